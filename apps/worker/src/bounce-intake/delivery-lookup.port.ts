/** DI token for the DeliveryLookup port. */
export const DELIVERY_LOOKUP = Symbol('DELIVERY_LOOKUP');

/** What the bounce intake needs to know about a message a DSN names. */
export interface DeliveredMessage {
  readonly accountId: string;
  /** Every envelope recipient of the message, as it was queued. */
  readonly recipients: readonly string[];
}

/**
 * Finds a message by the relay message id of its VERP token. The delivery stage binds it to its
 * recipients table (DeliveryQueueRepository.findMessage); null when the relay has no such message.
 */
export interface DeliveryLookup {
  findMessage(messageId: string): Promise<DeliveredMessage | null>;
}
