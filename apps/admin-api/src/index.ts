export { AdminApiModule } from './admin-api.module.js';
export { ADMIN_TOKEN, AdminAuth, AdminTokenGuard } from './auth/admin-token.guard.js';
export { ensureAdminToken, type AdminToken } from './auth/admin-token.js';
export { setupOpenApi } from './openapi.js';
