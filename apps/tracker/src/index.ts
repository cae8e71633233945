export { TrackerModule } from './tracker.module.js';
export { TRACKING_KEY } from './tracking-key.provider.js';
