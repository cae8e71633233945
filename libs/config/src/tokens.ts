/** DI tokens for the process-wide configuration and logger (values from loadConfig/createLogger). */
export const RELAY_CONFIG = Symbol('RELAY_CONFIG');
export const LOGGER = Symbol('LOGGER');
