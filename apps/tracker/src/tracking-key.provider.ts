import type { FactoryProvider } from '@nestjs/common';
import { RELAY_CONFIG, type RelayConfig, trackingKey } from '@relay/config';

/** DI token of the HMAC key that tracking tokens are signed with (a string). */
export const TRACKING_KEY = Symbol('TRACKING_KEY');

/** Loaded once at start, the same way the delivery stage that signs loads it. */
export const trackingKeyProvider: FactoryProvider<Promise<string>> = {
  provide: TRACKING_KEY,
  inject: [RELAY_CONFIG],
  useFactory: (config: RelayConfig) => trackingKey(config),
};
