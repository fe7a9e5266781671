// Validates STIX objects against the OASIS STIX 2.1 JSON schemas in ../shared/stix2-schemas (SPEC §4).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// The OASIS schemas live in shared/ beside the repo (`../shared`); a git worktree one level deeper
// (`../../shared`) and VAKT_SHARED_DIR are also tried. Tests skip when none exists.
function findSchemaDir(): string {
  const candidates = [
    ...(process.env.VAKT_SHARED_DIR ? [resolve(process.env.VAKT_SHARED_DIR)] : []),
    resolve(process.cwd(), '..', 'shared'),
    resolve(process.cwd(), '..', '..', 'shared'),
  ].map((shared) => join(shared, 'stix2-schemas', 'schemas'));
  return candidates.find((dir) => existsSync(join(dir, 'sdos', 'indicator.json'))) ?? candidates[0] ?? '';
}

export const STIX_SCHEMA_DIR = findSchemaDir();
export const stixSchemasPresent = existsSync(join(STIX_SCHEMA_DIR, 'sdos', 'indicator.json'));
export const STIX_SCHEMAS_SKIP = stixSchemasPresent
  ? false
  : `OASIS STIX schemas not found at ${STIX_SCHEMA_DIR}; schema validation skipped`;

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is module.exports.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

let ajv: Ajv2020 | undefined;
// Every schema's $id is the raw.githubusercontent URL of its path; $refs are relative to it.
let idBase = '';

function loadSchemas(): Ajv2020 {
  if (ajv) return ajv;
  // strict:false: the OASIS files use draft-07 habits (`definitions`) that strict mode rejects.
  // unicodeRegExp:false: their patterns escape "-" outside classes (`\\-?$`), invalid under the u flag.
  const instance = new Ajv2020({ strict: false, allErrors: true, unicodeRegExp: false });
  addFormats(instance);
  for (const folder of ['common', 'observables', 'sdos', 'sros']) {
    const dir = join(STIX_SCHEMA_DIR, folder);
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
      const schema = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      instance.addSchema(schema);
      if (!idBase && typeof schema.$id === 'string') {
        idBase = schema.$id.slice(0, schema.$id.length - `${folder}/${file}`.length);
      }
    }
  }
  ajv = instance;
  return instance;
}

const SCHEMA_PATH_BY_TYPE: Record<string, string> = {
  'marking-definition': 'common/marking-definition.json',
  bundle: 'common/bundle.json',
  relationship: 'sros/relationship.json',
  sighting: 'sros/sighting.json',
};

function schemaPathFor(type: string): string | undefined {
  if (SCHEMA_PATH_BY_TYPE[type]) return SCHEMA_PATH_BY_TYPE[type];
  for (const folder of ['sdos', 'observables']) {
    if (existsSync(join(STIX_SCHEMA_DIR, folder, `${type}.json`))) return `${folder}/${type}.json`;
  }
  return undefined;
}

/**
 * Validates one STIX object (by its `type`) against the OASIS schema for that type and returns the
 * error messages; an empty list means valid. Throws when the schemas are absent.
 */
export function validateStix(object: unknown): string[] {
  if (!stixSchemasPresent) throw new Error(STIX_SCHEMAS_SKIP || 'STIX schemas missing');
  const instance = loadSchemas();
  const type = (object as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') return ['object has no string "type"'];
  const path = schemaPathFor(type);
  if (!path) return [`no OASIS schema for type "${type}"`];
  const validate = instance.getSchema(`${idBase}${path}`);
  if (!validate) return [`schema ${path} did not load`];
  if (validate(object)) return [];
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'} (${e.schemaPath})`,
  );
}
