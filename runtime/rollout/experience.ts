/**
 * An emitted item plus its flow-control credit. The producer keeps at most `bufferSize`
 * items un-acked, so a consumer that falls behind pauses collection instead of growing a
 * queue. Call `ack()` once the item is consumed (idempotent).
 */
export interface Delivery<T> {
  readonly item: T;
  ack(): void;
}

