export { WorkerModule } from './worker.module.js';
export { BounceIntakeService } from './bounce-intake/bounce-intake.service.js';
