export { ProjectorModule } from './projector.module.js';
export { PROJECTIONS, ProjectorService } from './projector.service.js';
