import { describe, expect, it } from 'vitest';
import { planChangedEvents } from './account-plan.js';

const ACCOUNT = '7c0f8f0e-8d0c-4c57-9a36-3d5b8d1d3f11';
const starter = { monthlyMessageLimit: 1000, monthlyByteLimit: null, overageAllowed: false };

describe('planChangedEvents', () => {
  it('records the plan an account is created with, without previous', () => {
    const [event, ...rest] = planChangedEvents(ACCOUNT, starter);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'AccountPlanChanged',
      version: 1,
      accountId: ACCOUNT,
      data: starter,
    });
    expect(event?.data).not.toHaveProperty('previous');
  });

  it.each([
    ['a message limit', { monthlyMessageLimit: 5000 }],
    ['a byte limit', { monthlyByteLimit: 1_000_000 }],
    ['overage', { overageAllowed: true }],
    ['a limit removed', { monthlyMessageLimit: null }],
  ])('records a change of %s with the previous plan', (_, change) => {
    const next = { ...starter, ...change };
    expect(planChangedEvents(ACCOUNT, next, starter).map((e) => e.data)).toEqual([
      { ...next, previous: starter },
    ]);
  });

  it('records nothing when the plan stays the same', () => {
    expect(planChangedEvents(ACCOUNT, { ...starter }, starter)).toEqual([]);
  });

  it('copies only the plan fields', () => {
    const account = { ...starter, name: 'Acme', passwordHash: 'scrypt$...' };
    expect(planChangedEvents(ACCOUNT, account)[0]?.data).toEqual(starter);
  });
});
