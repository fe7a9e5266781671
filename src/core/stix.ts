// STIX 2.1 objects the TAXII feed serves (SPEC §4): the instance Identity, TLP:CLEAR and one Indicator per IP.

import { parseIp } from './ip.js';

export const STIX_SPEC_VERSION = '2.1';

/** Official TLP 2.0 CLEAR marking (OASIS cti-stix-common-objects, TLP 2.0 extension examples). */
export const TLP_CLEAR_MARKING_ID = 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487';
export const TLP_2_EXTENSION_ID = 'extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d';

export interface StixMarkingDefinition {
  readonly type: 'marking-definition';
  readonly spec_version: '2.1';
  readonly id: string;
  readonly created: string;
  readonly name: string;
  readonly extensions: Readonly<
    Record<string, { readonly extension_type: 'property-extension'; readonly tlp_2_0: string }>
  >;
}

/**
 * The TLP:CLEAR marking definition exactly as OASIS publishes it; its id and `created` are fixed by the
 * standard, so it must never be regenerated. Serve it from the feed so `object_marking_refs` resolve.
 */
export const TLP_CLEAR_MARKING: StixMarkingDefinition = Object.freeze({
  type: 'marking-definition',
  spec_version: '2.1',
  id: TLP_CLEAR_MARKING_ID,
  created: '2022-10-01T00:00:00.000Z',
  name: 'TLP:CLEAR',
  extensions: Object.freeze({
    [TLP_2_EXTENSION_ID]: Object.freeze({ extension_type: 'property-extension', tlp_2_0: 'clear' }),
  }),
});

export interface StixIdentity {
  readonly type: 'identity';
  readonly spec_version: '2.1';
  readonly id: string;
  readonly created: string;
  readonly modified: string;
  readonly name: string;
  readonly description: string;
  readonly identity_class: 'organization' | 'system';
  readonly contact_information: string;
  readonly object_marking_refs: readonly string[];
}

export interface StixKillChainPhase {
  readonly kill_chain_name: string;
  readonly phase_name: string;
}

export interface StixExternalReference {
  readonly source_name: string;
  readonly external_id: string;
  readonly url: string;
}

export interface StixIndicator {
  readonly type: 'indicator';
  readonly spec_version: '2.1';
  readonly id: string;
  readonly created_by_ref: string;
  readonly created: string;
  readonly modified: string;
  readonly revoked?: true;
  readonly name: string;
  readonly description: string;
  readonly indicator_types: readonly ['malicious-activity'];
  readonly pattern: string;
  readonly pattern_type: 'stix';
  readonly pattern_version: '2.1';
  readonly valid_from: string;
  readonly valid_until: string;
  readonly confidence: number;
  readonly labels?: readonly string[];
  readonly kill_chain_phases?: readonly StixKillChainPhase[];
  readonly external_references?: readonly StixExternalReference[];
  readonly object_marking_refs: readonly string[];
}

export type StixObject = StixIndicator | StixIdentity | StixMarkingDefinition;

// STIX identifiers need an RFC 4122 UUID (the OASIS schema pins versions 1-5 and the variant nibble).
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const STIX_ID_PATTERN = /^([a-z][a-z0-9-]*[a-z0-9])--([0-9a-fA-F-]{36})$/;

/** Splits `type--uuid`; null when either half is malformed. The uuid is returned lower-case. */
export function parseStixId(text: string): { type: string; uuid: string } | null {
  const match = STIX_ID_PATTERN.exec(text);
  if (!match?.[1] || !match[2]) return null;
  const uuid = match[2].toLowerCase();
  if (!UUID_PATTERN.test(uuid)) return null;
  return { type: match[1], uuid };
}

/** `type--uuid` from a bare UUID or an id of that type; throws on anything else (a caller bug). */
export function stixId(type: string, uuidOrId: string): string {
  const parsed = parseStixId(uuidOrId);
  if (parsed) {
    if (parsed.type !== type) throw new TypeError(`expected a ${type} id, got ${uuidOrId}`);
    return `${type}--${parsed.uuid}`;
  }
  const uuid = uuidOrId.toLowerCase();
  if (!UUID_PATTERN.test(uuid)) throw new TypeError(`not a UUID: ${uuidOrId}`);
  return `${type}--${uuid}`;
}

// toISOString switches to a six-digit signed year outside 0000-9999, which STIX timestamps cannot express.
// Date.UTC maps years 0-99 to 1900-1999, so year 0 is set with setUTCFullYear.
const MAX_STIX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const MIN_STIX_MS = new Date(0).setUTCFullYear(0, 0, 1);

/** Epoch milliseconds → STIX timestamp with exactly millisecond precision (`2026-01-02T03:04:05.678Z`). */
export function stixTimestamp(epochMs: number): string {
  if (!Number.isFinite(epochMs)) throw new RangeError(`not a finite time: ${epochMs}`);
  const ms = Math.floor(epochMs);
  if (ms > MAX_STIX_MS || ms < MIN_STIX_MS) throw new RangeError(`time outside years 0000-9999: ${epochMs}`);
  return new Date(ms).toISOString();
}

export interface InstanceInfo {
  /** Display name of this Vakt instance, e.g. "Example Corp threat feed". */
  readonly name: string;
  /** Configured public base URL; shown as the contact point. */
  readonly publicUrl: string;
  /** A UUID or `identity--<uuid>`, stable for the life of the instance. */
  readonly identityId: string;
  /** Epoch ms at which the identity was first published; stable, or `created` changes between fetches. */
  readonly created: number;
  /** Defaults to `organization`: consumers treat `created_by_ref` as "who vouches for this". */
  readonly identityClass?: 'organization' | 'system';
}

/** The Identity every Indicator's `created_by_ref` names (SPEC §4). Pure: equal input, equal output. */
export function identityObject(instance: InstanceInfo): StixIdentity {
  const created = stixTimestamp(instance.created);
  return {
    type: 'identity',
    spec_version: STIX_SPEC_VERSION,
    id: stixId('identity', instance.identityId),
    created,
    modified: created,
    name: instance.name,
    description: `Vakt IP reputation and threat-intelligence instance at ${instance.publicUrl}`,
    identity_class: instance.identityClass ?? 'organization',
    contact_information: instance.publicUrl,
    object_marking_refs: [TLP_CLEAR_MARKING_ID],
  };
}

export interface IndicatorBehavior {
  readonly name: string;
  /** ATT&CK ids: techniques `T1110`, sub-techniques `T1110.001`, tactics `TA0006`; others are skipped. */
  readonly mitre: readonly string[];
  /** ATT&CK tactic short name, e.g. `credential-access`; normalised to lower-case-hyphenated. */
  readonly killChainPhase?: string | null;
}

export interface IndicatorReputation {
  /** Canonical or not: it is re-parsed, so a malformed value can never reach the pattern. */
  readonly ip: string;
  readonly version: 4 | 6;
  /** UUID v4 stored with the IP (or `indicator--<uuid>`). */
  readonly stixId: string;
  /** Epoch ms of the first published version. */
  readonly created: number;
  /** Epoch ms of this version. */
  readonly modified: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** 0-100 (SPEC §5); rounded and clamped. */
  readonly confidenceLevel: number;
  readonly behaviors: readonly IndicatorBehavior[];
  readonly categories: readonly string[];
  readonly revoked?: boolean;
}

export interface IndicatorOptions {
  /** Reputation retention window (SPEC §6), ms; `valid_until` = last seen + this. */
  readonly retentionMs: number;
  /** The instance Identity id (UUID or `identity--<uuid>`). */
  readonly identityId: string;
}

const TECHNIQUE_ID = /^T(\d{4})(?:\.(\d{3}))?$/;
const TACTIC_ID = /^TA\d{4}$/;

/** ATT&CK id → external reference with its canonical URL; null for ids that are not ATT&CK ids. */
export function attackReference(id: string): StixExternalReference | null {
  const upper = id.trim().toUpperCase();
  const technique = TECHNIQUE_ID.exec(upper);
  if (technique) {
    const path = technique[2] ? `T${technique[1]}/${technique[2]}` : `T${technique[1]}`;
    return {
      source_name: 'mitre-attack',
      external_id: upper,
      url: `https://attack.mitre.org/techniques/${path}/`,
    };
  }
  if (TACTIC_ID.test(upper)) {
    return {
      source_name: 'mitre-attack',
      external_id: upper,
      url: `https://attack.mitre.org/tactics/${upper}/`,
    };
  }
  return null;
}

function phaseName(raw: string): string {
  // STIX: phase_name SHOULD be lower-case with hyphens ("Credential Access" → "credential-access").
  return raw
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, '-');
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/**
 * One STIX 2.1 Indicator version for a listed IP (SPEC §4). Deterministic: list properties are
 * de-duplicated and sorted, so equal reputations give byte-identical JSON whatever order the store
 * returns behaviours in. Empty lists are omitted (STIX forbids them). `valid_until` is always at
 * least 1 ms after `valid_from`, even with equal first/last seen or a zero retention window; a
 * `modified` earlier than `created` (clock skew between nodes) is raised to `created`.
 * Throws only on caller bugs: an unparsable IP, a version mismatch, a malformed UUID, a bad time.
 */
export function indicatorObject(rep: IndicatorReputation, opts: IndicatorOptions): StixIndicator {
  const parsed = parseIp(rep.ip);
  if (!parsed.ok) throw new TypeError(`indicator for an invalid IP: ${parsed.reason}`);
  const ip = parsed.ip;
  if (ip.version !== rep.version)
    throw new TypeError(`${ip.text} is IPv${ip.version}, not IPv${rep.version}`);
  if (!Number.isFinite(opts.retentionMs) || opts.retentionMs < 0) {
    throw new RangeError(`retention window must be ≥ 0 ms, got ${opts.retentionMs}`);
  }

  const validFromMs = Math.floor(rep.firstSeen);
  const validUntilMs = Math.max(Math.floor(rep.lastSeen + opts.retentionMs), validFromMs + 1);
  const createdMs = Math.floor(rep.created);
  const modifiedMs = Math.max(Math.floor(rep.modified), createdMs);

  const labels = sortedUnique(
    [...rep.behaviors.map((b) => b.name), ...rep.categories].filter((l) => l !== ''),
  );
  const phases = sortedUnique(
    rep.behaviors.map((b) => (b.killChainPhase ? phaseName(b.killChainPhase) : '')).filter((p) => p !== ''),
  );
  const references = sortedUnique(rep.behaviors.flatMap((b) => b.mitre.map((id) => id.trim().toUpperCase())))
    .map(attackReference)
    .filter((r): r is StixExternalReference => r !== null);
  const confidence = Math.min(100, Math.max(0, Math.round(rep.confidenceLevel)));
  const family = ip.version === 4 ? 'ipv4-addr' : 'ipv6-addr';

  const description =
    `IPv${ip.version} address ${ip.text} observed in malicious activity from ${stixTimestamp(validFromMs)} ` +
    `to ${stixTimestamp(Math.floor(rep.lastSeen))}; confidence ${confidence}/100` +
    (labels.length > 0 ? `; ${labels.join(', ')}.` : '.');

  return {
    type: 'indicator',
    spec_version: STIX_SPEC_VERSION,
    id: stixId('indicator', rep.stixId),
    created_by_ref: stixId('identity', opts.identityId),
    created: stixTimestamp(createdMs),
    modified: stixTimestamp(modifiedMs),
    ...(rep.revoked === true ? { revoked: true as const } : {}),
    name: `Malicious IP ${ip.text}`,
    description,
    indicator_types: ['malicious-activity'],
    pattern: `[${family}:value = '${ip.text}']`,
    pattern_type: 'stix',
    pattern_version: STIX_SPEC_VERSION,
    valid_from: stixTimestamp(validFromMs),
    valid_until: stixTimestamp(validUntilMs),
    confidence,
    ...(labels.length > 0 ? { labels } : {}),
    ...(phases.length > 0
      ? { kill_chain_phases: phases.map((phase_name) => ({ kill_chain_name: 'mitre-attack', phase_name })) }
      : {}),
    ...(references.length > 0 ? { external_references: references } : {}),
    object_marking_refs: [TLP_CLEAR_MARKING_ID],
  };
}
