// Compiles the detection catalog once and classifies groups of sensor events (usually one session).
import type { EventType, SensorEvent } from '../events.js';
import type { Behavior, Catalog, Condition, Primitive } from './catalog.js';
import { type CompiledGlob, compileGlob, matchGlob } from './glob.js';

/** Per-event lazily computed field values, shared by every primitive tested against that event. */
class EventView {
  private readonly values = new Map<string, string | null>();
  private readonly lowered = new Map<string, string | null>();
  private segmentsCache: string[] | null = null;
  private loweredSegmentsCache: string[] | null = null;

  constructor(readonly event: SensorEvent) {}

  value(field: string, lower: boolean): string | null {
    const cache = lower ? this.lowered : this.values;
    const cached = cache.get(field);
    if (cached !== undefined) return cached;
    let value: string | null;
    if (lower) {
      const raw = this.value(field, false);
      value = raw === null ? null : raw.toLowerCase();
    } else if (field === 'credentials') {
      value = this.event.type === 'auth' ? `${this.event.username}:${this.event.password}` : null;
    } else {
      const raw = (this.event as unknown as Record<string, unknown>)[field];
      value = raw === null || raw === undefined ? null : String(raw);
    }
    cache.set(field, value);
    return value;
  }

  /**
   * A shell line split into its simple commands (`a; b && c | d`), so that anchored globs such as
   * `wget *` also match `cd /tmp; wget http://…`. Quoting is ignored on purpose: attackers rarely quote
   * separators, and a split inside quotes only adds candidates, never hides the whole line.
   */
  segments(lower: boolean): string[] {
    if (lower) {
      this.loweredSegmentsCache ??= this.segments(false).map((segment) => segment.toLowerCase());
      return this.loweredSegmentsCache;
    }
    if (this.segmentsCache === null) {
      const line = this.event.type === 'command' ? this.event.command : '';
      this.segmentsCache = line
        .split(/;|&&|\|\||\||&|\r|\n/)
        .map((part) => part.trim())
        .filter((part) => part !== '');
    }
    return this.segmentsCache;
  }
}

type Test = (value: string) => boolean;

interface CompiledPrimitive {
  readonly index: number;
  readonly primitive: Primitive;
  /** Null matches every protocol. */
  readonly protocols: ReadonlySet<string> | null;
  readonly lower: boolean;
  /** Shell commands are tested line-wide and per simple command. */
  readonly perSegment: boolean;
  readonly test: Test;
}

function compileTest(primitive: Primitive): Test {
  const lower = primitive.caseInsensitive === true && primitive.operator !== 'regex';
  const pattern = lower ? primitive.pattern.toLowerCase() : primitive.pattern;
  switch (primitive.operator) {
    case 'equals':
      return (value) => value === pattern;
    case 'contains':
      return (value) => value.includes(pattern);
    case 'glob': {
      const glob: CompiledGlob = compileGlob(pattern);
      return (value) => matchGlob(glob, value);
    }
    case 'regex': {
      const regex = new RegExp(primitive.pattern, primitive.caseInsensitive ? 'iu' : 'u');
      return (value) => regex.test(value);
    }
  }
}

type CompiledCondition = (counts: Int32Array, distinct: ReadonlyMap<string, Set<string>>) => boolean;

interface CompiledBehavior {
  readonly behavior: Behavior;
  readonly evaluate: CompiledCondition;
}

/** A catalog ready for matching: build once with `compileCatalog`, reuse for every session. */
export interface CompiledCatalog {
  readonly catalog: Catalog;
  readonly primitives: readonly CompiledPrimitive[];
  readonly byEventType: ReadonlyMap<EventType, readonly CompiledPrimitive[]>;
  readonly behaviors: readonly CompiledBehavior[];
  /** `${primitiveIndex}\u0000${field}` pairs whose distinct values some condition counts. */
  readonly distinctKeys: ReadonlyMap<number, readonly string[]>;
}

export interface Classification {
  /** Primitive name → number of events it matched. Only primitives that matched appear. */
  readonly primitives: Map<string, number>;
  /** Behaviour name → 1 for every behaviour whose condition holds over the group. */
  readonly behaviors: Map<string, number>;
}

function distinctKey(index: number, field: string): string {
  return `${index}\u0000${field}`;
}

/** Compiles every primitive (regexes, globs) and behaviour condition. Expects a validated catalog. */
export function compileCatalog(catalog: Catalog): CompiledCatalog {
  const indexByName = new Map<string, number>();
  const primitives: CompiledPrimitive[] = catalog.primitives.map((primitive, index) => {
    indexByName.set(primitive.name, index);
    const list = typeof primitive.protocol === 'string' ? [primitive.protocol] : primitive.protocol;
    return {
      index,
      primitive,
      protocols: list.includes('*') ? null : new Set(list),
      lower: primitive.caseInsensitive === true && primitive.operator !== 'regex',
      perSegment: primitive.field === 'command' && primitive.operator !== 'contains',
      test: compileTest(primitive),
    };
  });
  const byEventType = new Map<EventType, CompiledPrimitive[]>();
  for (const compiled of primitives) {
    const list = byEventType.get(compiled.primitive.eventType) ?? [];
    list.push(compiled);
    byEventType.set(compiled.primitive.eventType, list);
  }

  const distinctKeys = new Map<number, string[]>();
  const indexOf = (name: string): number => {
    const index = indexByName.get(name);
    if (index === undefined) throw new Error(`detection catalog: unknown primitive "${name}"`);
    return index;
  };
  const compileCondition = (condition: Condition): CompiledCondition => {
    if (typeof condition === 'string') {
      const index = indexOf(condition);
      return (counts) => (counts[index] ?? 0) > 0;
    }
    if ('all' in condition) {
      const parts = condition.all.map(compileCondition);
      return (counts, distinct) => parts.every((part) => part(counts, distinct));
    }
    if ('any' in condition) {
      const parts = condition.any.map(compileCondition);
      return (counts, distinct) => parts.some((part) => part(counts, distinct));
    }
    if ('not' in condition) {
      const inner = compileCondition(condition.not);
      return (counts, distinct) => !inner(counts, distinct);
    }
    const index = indexOf(condition.primitive);
    const { min, distinct: field } = condition;
    if (field === undefined) return (counts) => (counts[index] ?? 0) >= min;
    const fields = distinctKeys.get(index) ?? [];
    if (!fields.includes(field)) fields.push(field);
    distinctKeys.set(index, fields);
    const key = distinctKey(index, field);
    return (_counts, distinct) => (distinct.get(key)?.size ?? 0) >= min;
  };
  const behaviors = catalog.behaviors.map((behavior) => ({
    behavior,
    evaluate: compileCondition(behavior.condition),
  }));
  return { catalog, primitives, byEventType, behaviors, distinctKeys };
}

function matches(compiled: CompiledPrimitive, view: EventView): boolean {
  if (compiled.protocols !== null && !compiled.protocols.has(view.event.protocol)) return false;
  const value = view.value(compiled.primitive.field, compiled.lower);
  if (value === null) return false;
  if (compiled.test(value)) return true;
  if (!compiled.perSegment) return false;
  const segments = view.segments(compiled.lower);
  // A single segment equal to the whole line was already tested.
  if (segments.length === 1 && segments[0] === value) return false;
  for (const segment of segments) if (compiled.test(segment)) return true;
  return false;
}

/** Names of the primitives one event matches, in catalog order. */
export function matchEventPrimitives(event: SensorEvent, compiled: CompiledCatalog): string[] {
  const view = new EventView(event);
  const names: string[] = [];
  for (const primitive of compiled.byEventType.get(event.type) ?? []) {
    if (matches(primitive, view)) names.push(primitive.primitive.name);
  }
  return names;
}

/**
 * Classifies a group of events — normally one session — against the catalog. Behaviours are judged
 * over the whole group, so thresholds such as "≥ 5 failed logins" or "≥ 5 distinct ports" see every
 * event passed in; pass an IP's events across sessions to evaluate cross-session behaviours.
 */
export function classifyEvents(events: Iterable<SensorEvent>, compiled: CompiledCatalog): Classification {
  const counts = new Int32Array(compiled.primitives.length);
  const distinct = new Map<string, Set<string>>();
  for (const event of events) {
    const candidates = compiled.byEventType.get(event.type);
    if (candidates === undefined) continue;
    const view = new EventView(event);
    for (const primitive of candidates) {
      if (!matches(primitive, view)) continue;
      counts[primitive.index] = (counts[primitive.index] ?? 0) + 1;
      const fields = compiled.distinctKeys.get(primitive.index);
      if (fields === undefined) continue;
      for (const field of fields) {
        const key = distinctKey(primitive.index, field);
        let set = distinct.get(key);
        if (set === undefined) {
          set = new Set();
          distinct.set(key, set);
        }
        set.add(view.value(field, false) ?? '');
      }
    }
  }
  const primitives = new Map<string, number>();
  for (const compiledPrimitive of compiled.primitives) {
    const count = counts[compiledPrimitive.index] ?? 0;
    if (count > 0) primitives.set(compiledPrimitive.primitive.name, count);
  }
  const behaviors = new Map<string, number>();
  for (const { behavior, evaluate } of compiled.behaviors) {
    if (evaluate(counts, distinct)) behaviors.set(behavior.name, 1);
  }
  return { primitives, behaviors };
}

/** Classifies one session's events (SPEC §7: the server classifies sessions centrally). */
export function classifySession(events: readonly SensorEvent[], compiled: CompiledCatalog): Classification {
  return classifyEvents(events, compiled);
}
