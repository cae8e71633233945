import { createEvent, type AccountPlanChanged, type Plan } from '@relay/domain';

export function planOf(account: Plan): Plan {
  return {
    monthlyMessageLimit: account.monthlyMessageLimit,
    monthlyByteLimit: account.monthlyByteLimit,
    overageAllowed: account.overageAllowed,
  };
}

const samePlan = (a: Plan, b: Plan): boolean =>
  a.monthlyMessageLimit === b.monthlyMessageLimit &&
  a.monthlyByteLimit === b.monthlyByteLimit &&
  a.overageAllowed === b.overageAllowed;

/**
 * The AccountPlanChanged to record for an account now on `next`: always at creation (no
 * `previous`), and on a change only when a limit or overageAllowed really differs.
 */
export function planChangedEvents(accountId: string, next: Plan, previous?: Plan): AccountPlanChanged[] {
  if (previous && samePlan(previous, next)) return [];
  return [
    createEvent('AccountPlanChanged', {
      accountId,
      data: previous ? { ...planOf(next), previous: planOf(previous) } : planOf(next),
    }),
  ];
}
