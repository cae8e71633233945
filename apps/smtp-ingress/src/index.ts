export { SmtpIngressModule } from './smtp-ingress.module.js';
export { SmtpIngressService, type Listener } from './smtp/smtp-ingress.service.js';
export { SENDER_DIRECTORY, type SenderAccount, type SenderDirectory } from './smtp/sender-directory.port.js';
