// Detection catalog types (SPEC §1: primitives and behaviours are data) and their validation.
import { EVENT_TYPES, type EventType } from '../events.js';
import catalogJson from './catalog.json' with { type: 'json' };

export const OPERATORS = ['equals', 'contains', 'glob', 'regex'] as const;
export type Operator = (typeof OPERATORS)[number];

export const SEVERITIES = ['low', 'medium', 'high', 'very_high'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** MITRE ATT&CK enterprise tactics, as used in STIX kill_chain_phases (`mitre-attack`). */
export const KILL_CHAIN_PHASES = [
  'reconnaissance',
  'resource-development',
  'initial-access',
  'execution',
  'persistence',
  'privilege-escalation',
  'defense-evasion',
  'credential-access',
  'discovery',
  'lateral-movement',
  'collection',
  'command-and-control',
  'exfiltration',
  'impact',
] as const;
export type KillChainPhase = (typeof KILL_CHAIN_PHASES)[number];

/** Fields a primitive may test, per event type. `credentials` is derived: `username:password`. */
export const MATCHABLE_FIELDS: Readonly<Record<EventType, readonly string[]>> = {
  connect: [],
  auth: ['username', 'password', 'success', 'credentials'],
  command: ['command'],
  request: ['method', 'path', 'userAgent', 'body'],
  download: ['url', 'sha256'],
  tunnel: ['targetHost', 'targetPort', 'data'],
  disconnect: [],
};
/** Fields every event type has. */
export const COMMON_FIELDS = ['type', 'protocol', 'dstPort', 'srcPort'] as const;

export interface Primitive {
  readonly name: string;
  readonly description: string;
  /** A protocol, a list of protocols, or "*" for any. */
  readonly protocol: string | readonly string[];
  readonly eventType: EventType;
  readonly field: string;
  readonly operator: Operator;
  readonly pattern: string;
  readonly caseInsensitive?: boolean;
}

/**
 * A boolean condition over primitive counts within one classified group of events:
 * a primitive name (matched at least once), a count threshold, a distinct-value threshold,
 * or `all` / `any` / `not` combinations.
 */
export type Condition =
  | string
  | { readonly primitive: string; readonly min: number; readonly distinct?: string }
  | { readonly all: readonly Condition[] }
  | { readonly any: readonly Condition[] }
  | { readonly not: Condition };

export interface Behavior {
  readonly name: string;
  readonly severity: Severity;
  readonly description: string;
  readonly mitre: readonly string[];
  readonly killChainPhase: KillChainPhase;
  readonly condition: Condition;
  /**
   * Also judged across the IP's sessions, per UTC day (decision 0605): the condition must be a threshold
   * (`{primitive, min}`) or `any` of thresholds and plain primitives; the thresholds are summed over the
   * day's sessions that do not show the behaviour themselves.
   */
  readonly acrossSessions?: boolean;
}

/** The `{primitive, min}` thresholds of an `acrossSessions` behaviour (plain primitives are left out). */
export function windowThresholds(behavior: Behavior): { primitive: string; min: number }[] {
  const { condition } = behavior;
  const leaves = typeof condition === 'object' && 'any' in condition ? condition.any : [condition];
  const out: { primitive: string; min: number }[] = [];
  for (const leaf of leaves) {
    if (typeof leaf === 'object' && 'primitive' in leaf && leaf.distinct === undefined) {
      out.push({ primitive: leaf.primitive, min: leaf.min });
    }
  }
  return out;
}

export interface Catalog {
  readonly version: string;
  readonly primitives: readonly Primitive[];
  readonly behaviors: readonly Behavior[];
}

const NAME = /^[a-z][a-z0-9_]{1,63}$/;
const MITRE_ID = /^T[0-9]{4}(\.[0-9]{3})?$/;
const MAX_PATTERN = 1024;
// A group holding a quantifier that is itself quantified, e.g. (a+)+ or (\w*x)* — the shape behind
// catastrophic backtracking. Catalog regexes must not contain one.
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[*+]|\{\d+,?\d*\})(?:[^()\\]|\\.)*\)(?:[*+]|\{\d+,?\d*\})/;

/** The reason a regex pattern is unfit for the catalog, or null when it is acceptable. */
export function unsafeRegexReason(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN) return `longer than ${MAX_PATTERN} characters`;
  if (NESTED_QUANTIFIER.test(pattern)) return 'nested quantifier (catastrophic backtracking risk)';
  if (/\\[1-9]/.test(pattern)) return 'backreferences are not allowed';
  try {
    new RegExp(pattern, 'u');
  } catch (error) {
    return `does not compile: ${error instanceof Error ? error.message : String(error)}`;
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkCondition(
  condition: unknown,
  where: string,
  primitives: ReadonlyMap<string, Primitive>,
  problems: string[],
  depth: number,
): void {
  if (depth > 8) {
    problems.push(`${where}: conditions nest deeper than 8 levels`);
    return;
  }
  if (typeof condition === 'string') {
    if (!primitives.has(condition)) problems.push(`${where}: unknown primitive "${condition}"`);
    return;
  }
  if (!isRecord(condition)) {
    problems.push(`${where}: a condition is a primitive name or an object`);
    return;
  }
  const keys = Object.keys(condition);
  if ('all' in condition || 'any' in condition) {
    const key = 'all' in condition ? 'all' : 'any';
    const list = condition[key];
    if (keys.length !== 1 || !Array.isArray(list) || list.length === 0) {
      problems.push(`${where}: "${key}" takes a non-empty list and nothing else`);
      return;
    }
    list.forEach((child, index) => {
      checkCondition(child, `${where}.${key}[${index}]`, primitives, problems, depth + 1);
    });
    return;
  }
  if ('not' in condition) {
    if (keys.length !== 1) problems.push(`${where}: "not" takes one condition and nothing else`);
    checkCondition(condition.not, `${where}.not`, primitives, problems, depth + 1);
    return;
  }
  if ('primitive' in condition) {
    const name = condition.primitive;
    const primitive = typeof name === 'string' ? primitives.get(name) : undefined;
    if (!primitive) problems.push(`${where}: unknown primitive "${String(name)}"`);
    const min = condition.min;
    if (typeof min !== 'number' || !Number.isInteger(min) || min < 1) {
      problems.push(`${where}: "min" must be an integer ≥ 1`);
    }
    const distinct = condition.distinct;
    if (distinct !== undefined) {
      const known =
        typeof distinct === 'string' && primitive && fieldsFor(primitive.eventType).includes(distinct);
      if (!known) problems.push(`${where}: "distinct" must name a field of the primitive's event type`);
    }
    const extra = keys.filter((key) => !['primitive', 'min', 'distinct'].includes(key));
    if (extra.length > 0) problems.push(`${where}: unknown keys ${extra.join(', ')}`);
    return;
  }
  problems.push(`${where}: a condition object needs "all", "any", "not" or "primitive"`);
}

function fieldsFor(eventType: EventType): readonly string[] {
  return [...COMMON_FIELDS, ...MATCHABLE_FIELDS[eventType]];
}

function checkPrimitive(raw: unknown, where: string, problems: string[]): Primitive | null {
  if (!isRecord(raw)) {
    problems.push(`${where}: a primitive is an object`);
    return null;
  }
  const before = problems.length;
  const { name, description, protocol, eventType, field, operator, pattern, caseInsensitive } = raw;
  const label = typeof name === 'string' ? `primitive "${name}"` : where;
  if (typeof name !== 'string' || !NAME.test(name)) problems.push(`${where}: name must match ${NAME}`);
  if (typeof description !== 'string' || description.trim() === '') {
    problems.push(`${label}: description is required`);
  }
  const protocols = Array.isArray(protocol) ? protocol : [protocol];
  if (
    protocols.length === 0 ||
    !protocols.every((p) => typeof p === 'string' && /^([a-z0-9][a-z0-9._-]{0,31}|\*)$/.test(p))
  ) {
    problems.push(`${label}: protocol must be a lower-case token, a list of them, or "*"`);
  }
  if (typeof eventType !== 'string' || !(EVENT_TYPES as readonly string[]).includes(eventType)) {
    problems.push(`${label}: eventType must be one of ${EVENT_TYPES.join(', ')}`);
  } else if (typeof field !== 'string' || !fieldsFor(eventType as EventType).includes(field)) {
    problems.push(`${label}: field must be one of ${fieldsFor(eventType as EventType).join(', ')}`);
  }
  if (typeof operator !== 'string' || !(OPERATORS as readonly string[]).includes(operator)) {
    problems.push(`${label}: operator must be one of ${OPERATORS.join(', ')}`);
  }
  if (typeof pattern !== 'string' || pattern === '') {
    problems.push(`${label}: pattern must be a non-empty string`);
  } else if (operator === 'regex') {
    const reason = unsafeRegexReason(pattern);
    if (reason) problems.push(`${label}: regex ${reason}`);
  } else if (pattern.length > MAX_PATTERN) {
    problems.push(`${label}: pattern is longer than ${MAX_PATTERN} characters`);
  }
  if (caseInsensitive !== undefined && typeof caseInsensitive !== 'boolean') {
    problems.push(`${label}: caseInsensitive must be a boolean`);
  }
  return problems.length === before ? (raw as unknown as Primitive) : null;
}

/**
 * Validates a parsed catalog document and returns it typed. Throws one Error listing every problem
 * (unknown primitives in conditions, duplicate names, bad regexes, unknown MITRE id shapes …).
 */
export function parseCatalog(input: unknown): Catalog {
  const problems: string[] = [];
  if (!isRecord(input)) throw new Error('detection catalog: the document must be an object');
  if (typeof input.version !== 'string' || input.version === '')
    problems.push('version must be a non-empty string');
  const rawPrimitives = Array.isArray(input.primitives) ? input.primitives : [];
  const rawBehaviors = Array.isArray(input.behaviors) ? input.behaviors : [];
  if (!Array.isArray(input.primitives)) problems.push('primitives must be a list');
  if (!Array.isArray(input.behaviors)) problems.push('behaviors must be a list');

  const primitives = new Map<string, Primitive>();
  rawPrimitives.forEach((raw, index) => {
    const primitive = checkPrimitive(raw, `primitives[${index}]`, problems);
    if (!primitive) return;
    if (primitives.has(primitive.name)) problems.push(`primitive "${primitive.name}" is defined twice`);
    primitives.set(primitive.name, primitive);
  });

  const behaviorNames = new Set<string>();
  const used = new Set<string>();
  rawBehaviors.forEach((raw, index) => {
    const where = `behaviors[${index}]`;
    if (!isRecord(raw)) {
      problems.push(`${where}: a behaviour is an object`);
      return;
    }
    const { name, severity, description, mitre, killChainPhase, condition } = raw;
    const label = typeof name === 'string' ? `behaviour "${name}"` : where;
    if (typeof name !== 'string' || !NAME.test(name)) problems.push(`${where}: name must match ${NAME}`);
    else if (behaviorNames.has(name)) problems.push(`${label} is defined twice`);
    else behaviorNames.add(name);
    if (typeof severity !== 'string' || !(SEVERITIES as readonly string[]).includes(severity)) {
      problems.push(`${label}: severity must be one of ${SEVERITIES.join(', ')}`);
    }
    if (typeof description !== 'string' || description.trim() === '')
      problems.push(`${label}: description is required`);
    if (
      !Array.isArray(mitre) ||
      mitre.length === 0 ||
      !mitre.every((id) => typeof id === 'string' && MITRE_ID.test(id))
    ) {
      problems.push(`${label}: mitre must be a non-empty list of technique ids like T1110 or T1110.001`);
    }
    if (
      typeof killChainPhase !== 'string' ||
      !(KILL_CHAIN_PHASES as readonly string[]).includes(killChainPhase)
    ) {
      problems.push(`${label}: killChainPhase must be an ATT&CK tactic (${KILL_CHAIN_PHASES.join(', ')})`);
    }
    checkCondition(condition, `${label}.condition`, primitives, problems, 0);
    collectPrimitiveNames(condition, used);
    const { acrossSessions } = raw;
    if (acrossSessions !== undefined && typeof acrossSessions !== 'boolean') {
      problems.push(`${label}: acrossSessions must be true or false`);
    } else if (acrossSessions === true && !windowable(condition)) {
      problems.push(
        `${label}: acrossSessions needs a threshold {primitive, min} or "any" of thresholds and primitives`,
      );
    }
  });
  for (const name of primitives.keys()) {
    if (!used.has(name)) problems.push(`primitive "${name}" is not used by any behaviour`);
  }

  if (problems.length > 0) {
    throw new Error(`detection catalog has ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  }
  return input as unknown as Catalog;
}

/** Whether a condition can be judged across sessions: a threshold, or `any` of thresholds and names. */
function windowable(condition: unknown): boolean {
  const threshold = (c: unknown) =>
    isRecord(c) && typeof c.primitive === 'string' && typeof c.min === 'number' && c.distinct === undefined;
  if (threshold(condition)) return true;
  if (!isRecord(condition) || !Array.isArray(condition.any) || Object.keys(condition).length !== 1)
    return false;
  return (
    condition.any.every((c) => typeof c === 'string' || threshold(c)) &&
    condition.any.some((c) => threshold(c))
  );
}

/** Every primitive name a condition refers to. */
export function collectPrimitiveNames(condition: unknown, into: Set<string>): Set<string> {
  if (typeof condition === 'string') into.add(condition);
  else if (isRecord(condition)) {
    if (typeof condition.primitive === 'string') into.add(condition.primitive);
    for (const key of ['all', 'any'] as const) {
      const list = condition[key];
      if (Array.isArray(list)) for (const child of list) collectPrimitiveNames(child, into);
    }
    if ('not' in condition) collectPrimitiveNames(condition.not, into);
  }
  return into;
}

let bundled: Catalog | null = null;

/** The catalog shipped with Vakt (`catalog.json`), validated once and cached. Throws on any problem. */
export function loadCatalog(): Catalog {
  bundled ??= parseCatalog(catalogJson);
  return bundled;
}
