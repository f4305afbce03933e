import { expect, it } from 'vitest';
import { metricValue } from './metrics-text.js';

const TEXT = [
  '# HELP outbox_pending Rows not yet published.',
  '# TYPE outbox_pending gauge',
  'outbox_pending 12',
  'outbox_pending_age_seconds 0.25',
  'outbox_publish_failures_total{kind="row"} 3',
  '',
].join('\n');

it('reads an unlabelled series, not one whose name only starts the same', () => {
  expect(metricValue(TEXT, 'outbox_pending')).toBe(12);
  expect(metricValue(TEXT, 'outbox_pending_age_seconds')).toBe(0.25);
});

it('reads a labelled series named with its labels as written', () => {
  expect(metricValue(TEXT, 'outbox_publish_failures_total{kind="row"}')).toBe(3);
});

it('is undefined for a series the text does not have', () => {
  expect(metricValue(TEXT, 'outbox_publish_failures_total')).toBeUndefined();
  expect(metricValue(TEXT, 'outbox_dead_rows')).toBeUndefined();
});
