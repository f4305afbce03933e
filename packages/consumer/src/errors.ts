/**
 * Thrown by a handler (or by the consumer for a payload that is not JSON) for an event that can never
 * be handled: it becomes a dead letter at once instead of being retried up to the delivery limit.
 */
export class PoisonMessageError extends Error {
  override name = 'PoisonMessageError';
}
