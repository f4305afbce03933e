import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@orders/testkit';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

// The shipped alert rules, checked and unit-tested by promtool (Debian's prometheus package, which
// scripts/test-tools.sh installs), and held to what an operator needs from each alert.

const run = promisify(execFile);
const DIR = path.join(REPO_ROOT, 'deploy/prometheus');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (
  parseYaml(readFileSync(path.join(DIR, 'rules.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

describe('deploy/prometheus/rules.yml', () => {
  it('passes `promtool check rules`', async () => {
    expect(
      promtool,
      'promtool is not installed (Debian: apt-get install prometheus; scripts/test-tools.sh does it)',
    ).toBe(true);
    const { stdout } = await run('promtool', ['check', 'rules', 'rules.yml'], { cwd: DIR });
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('passes its unit tests (`promtool test rules rules.test.yml`), which fire and spare every alert', async () => {
    expect(
      promtool,
      'promtool is not installed (Debian: apt-get install prometheus; scripts/test-tools.sh does it)',
    ).toBe(true);
    const result = await run('promtool', ['test', 'rules', 'rules.test.yml'], { cwd: DIR }).catch(
      (err: { stdout?: string; stderr?: string }) => err,
    );
    expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).toMatch(/SUCCESS/);
    // Each alert has a case where it fires and one where it stays quiet (exp_alerts: []).
    const tests = (
      parseYaml(readFileSync(path.join(DIR, 'rules.test.yml'), 'utf8')) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
      }
    ).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of rules) {
      const cases = tests.filter((t) => t.alertname === alert);
      expect(
        cases.some((c) => c.exp_alerts.length > 0),
        `${alert} never fires in rules.test.yml`,
      ).toBe(true);
      expect(
        cases.some((c) => c.exp_alerts.length === 0),
        `${alert} has no quiet case in rules.test.yml`,
      ).toBe(true);
    }
  });

  it('gives every alert a for:, a severity, a summary and a one-line runbook', () => {
    expect(rules.length).toBeGreaterThanOrEqual(11);
    for (const rule of rules) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      expect(rule.annotations?.['runbook'], rule.alert).toMatch(/^[^\n]{20,300}$/);
    }
  });

  it('selects only metrics the API and the relay export (or Prometheus itself: up)', () => {
    const sources = ['apps/api/src/metrics.ts', 'apps/relay/src/metrics.ts']
      .map((f) => readFileSync(path.join(REPO_ROOT, f), 'utf8'))
      .join('\n');
    // Metric names are the snake_case string literals there (`name: '...'` or a gauge helper's first argument).
    const exported = new Set([...sources.matchAll(/'([a-z]+(?:_[a-z]+)+)'/g)].map((m) => m[1]));
    for (const rule of rules) {
      const names = [...rule.expr.matchAll(/\b[a-z]+(?:_[a-z0-9]+)*\b/g)]
        .map((m) => m[0])
        .filter((n) => /^(outbox|http|orders)_/.test(n) || n === 'up');
      expect(names.length, `${rule.alert} selects no metric`).toBeGreaterThan(0);
      for (const name of names) {
        if (name === 'up') continue;
        const base = name.replace(/_(bucket|count|sum)$/, '');
        expect(exported.has(name) || exported.has(base), `${rule.alert}: ${name} is not exported`).toBe(true);
      }
    }
  });
});
