// `events.data` (decision 0606): a stored event without the fields its row holds in columns (id, sensor,
// session, ts, type). Written once per accepted event, so it is on the ingest hot path (decision 0640).

import type { SensorEvent } from '../core/events.js';

const BASE = ['id', 'ts', 'sensor', 'session', 'srcIp', 'srcPort', 'dstPort', 'protocol', 'type'];
/** The own keys of an event of each type as `validateEvent` builds it, in its order. */
const KEYS: Readonly<Record<string, readonly string[]>> = {
  connect: BASE,
  auth: [...BASE, 'username', 'password', 'success'],
  command: [...BASE, 'command'],
  request: [...BASE, 'method', 'path', 'userAgent', 'body'],
  download: [...BASE, 'url', 'sha256'],
  tunnel: [...BASE, 'targetHost', 'targetPort', 'data'],
  disconnect: [...BASE, 'durationMs'],
};

/** The reference form: the event minus the column fields, serialised in the event's own key order. */
export function eventDataSpread(event: SensorEvent): string {
  const { id: _id, sensor: _sensor, session: _session, ts: _ts, type: _type, ...rest } = event;
  return JSON.stringify(rest);
}

const NOT_JSON = new Error('a value JSON.stringify leaves out');

/** JSON of one field value; throws NOT_JSON where an object's serialisation would omit the field. */
function j(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw NOT_JSON;
  return text;
}

function hasKeys(event: object, keys: readonly string[] | undefined): boolean {
  if (keys === undefined) return false;
  const own = Object.keys(event);
  if (own.length !== keys.length) return false;
  for (let i = 0; i < own.length; i++) if (own[i] !== keys[i]) return false;
  return true;
}

/**
 * The same text as `eventDataSpread`, written field by field instead of copying the object and
 * serialising the copy, for an event with exactly the fields `validateEvent` gives its type, in that
 * order (every event of the sensor endpoint and the importers). Anything else takes the reference form.
 */
export function eventData(event: SensorEvent): string {
  if (!hasKeys(event, KEYS[event.type])) return eventDataSpread(event);
  try {
    const head = `{"srcIp":${j(event.srcIp)},"srcPort":${j(event.srcPort)},"dstPort":${j(event.dstPort)},"protocol":${j(event.protocol)}`;
    switch (event.type) {
      case 'connect':
        return `${head}}`;
      case 'auth':
        return `${head},"username":${j(event.username)},"password":${j(event.password)},"success":${j(event.success)}}`;
      case 'command':
        return `${head},"command":${j(event.command)}}`;
      case 'request':
        return `${head},"method":${j(event.method)},"path":${j(event.path)},"userAgent":${j(event.userAgent)},"body":${j(event.body)}}`;
      case 'download':
        return `${head},"url":${j(event.url)},"sha256":${j(event.sha256)}}`;
      case 'tunnel':
        return `${head},"targetHost":${j(event.targetHost)},"targetPort":${j(event.targetPort)},"data":${j(event.data)}}`;
      case 'disconnect':
        return `${head},"durationMs":${j(event.durationMs)}}`;
    }
  } catch (error) {
    if (error !== NOT_JSON) throw error;
  }
  return eventDataSpread(event);
}
