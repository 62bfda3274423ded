// Named rules for numbers read from configs and command lines, with the phrase that says what
// a rule wants ("must be <says>", "expected <says>"), so every reader words a rule the same way.

export type NumberRule = 'positive' | 'nonNegative' | 'posInt' | 'nonNegInt' | 'unit' | 'probability' | 'step';

export const NUMBER_RULES: Record<NumberRule, { test: (x: number) => boolean; says: string }> = {
  positive: { test: (x) => x > 0, says: 'a number > 0' },
  nonNegative: { test: (x) => x >= 0, says: 'a number >= 0' },
  posInt: { test: (x) => Number.isInteger(x) && x >= 1, says: 'an integer >= 1' },
  nonNegInt: { test: (x) => Number.isInteger(x) && x >= 0, says: 'an integer >= 0' },
  unit: { test: (x) => x >= 0 && x <= 1, says: 'a number in [0, 1]' },
  probability: { test: (x) => x >= 0 && x < 1, says: 'a number in [0, 1)' },
  // fusion's weight grid needs 1/step to be a whole number of steps
  step: { test: (x) => x > 0 && x <= 1 && Math.abs(Math.round(1 / x) * x - 1) < 1e-9, says: 'a number in (0, 1] that divides 1 (0.1, 0.05, 0.25, ...)' },
};

/** Whether `v` is a finite number that the rule accepts. */
export function followsRule(v: unknown, rule: NumberRule): v is number {
  return typeof v === 'number' && Number.isFinite(v) && NUMBER_RULES[rule].test(v);
}
