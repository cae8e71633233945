export { startRelay, type RunningRelay } from './relay.js';
