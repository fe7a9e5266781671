import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SensorEvent } from '../events.js';
import { type Catalog, loadCatalog, parseCatalog, unsafeRegexReason, windowThresholds } from './catalog.js';
import { classifyEvents, classifySession, compileCatalog, matchEventPrimitives } from './classify.js';
import { compileGlob, matchGlob } from './glob.js';

const base = {
  id: 'e1',
  ts: 0,
  sensor: 's',
  session: 'x',
  srcIp: '45.83.12.40',
  srcPort: 1,
  dstPort: 22,
  protocol: 'ssh',
} as const;

function command(text: string, protocol = 'ssh'): SensorEvent {
  return { ...base, protocol, type: 'command', command: text };
}

const tiny: Catalog = {
  version: 't',
  primitives: [
    {
      name: 'cmd_wget',
      description: 'd',
      protocol: ['ssh'],
      eventType: 'command',
      field: 'command',
      operator: 'glob',
      pattern: 'WGET *',
      caseInsensitive: true,
    },
    {
      name: 'conn',
      description: 'd',
      protocol: '*',
      eventType: 'connect',
      field: 'type',
      operator: 'equals',
      pattern: 'connect',
    },
  ],
  behaviors: [
    {
      name: 'fetch',
      severity: 'high',
      description: 'd',
      mitre: ['T1105'],
      killChainPhase: 'command-and-control',
      condition: 'cmd_wget',
    },
    {
      name: 'quiet',
      severity: 'low',
      description: 'd',
      mitre: ['T1046'],
      killChainPhase: 'reconnaissance',
      condition: { all: ['conn', { not: 'cmd_wget' }] },
    },
  ],
};

describe('glob matching', () => {
  it('anchors the whole string and supports * and ?', () => {
    const glob = compileGlob('wget *');
    assert.ok(matchGlob(glob, 'wget http://x'));
    assert.ok(!matchGlob(glob, 'xwget http://x'));
    assert.ok(matchGlob(compileGlob('a?c'), 'abc'));
    assert.ok(!matchGlob(compileGlob('a?c'), 'ac'));
    assert.ok(matchGlob(compileGlob('*'), ''));
    assert.ok(matchGlob(compileGlob('a*b*c'), 'aXXbYYc'));
    assert.ok(!matchGlob(compileGlob('a*b*c'), 'aXXbYY'));
  });

  it('treats regex metacharacters literally and honours backslash escapes', () => {
    assert.ok(matchGlob(compileGlob('stratum+tcp://(x).*'), 'stratum+tcp://(x).*'));
    assert.ok(!matchGlob(compileGlob('a.c'), 'abc'));
    assert.ok(matchGlob(compileGlob('a\\*'), 'a*'));
    assert.ok(!matchGlob(compileGlob('a\\*'), 'ab'));
  });

  it('stays fast on a pathological pattern', () => {
    const glob = compileGlob('*a*a*a*a*a*a*a*b');
    const started = performance.now();
    assert.ok(!matchGlob(glob, 'a'.repeat(8192)));
    assert.ok(performance.now() - started < 2000);
  });
});

describe('catalog validation', () => {
  it('loads the bundled catalog', () => {
    const catalog = loadCatalog();
    assert.ok(catalog.behaviors.length >= 40);
    assert.match(catalog.version, /\S/);
  });

  it('accepts acrossSessions only on thresholds (decision 0605) and lists their thresholds', () => {
    const bruteForce = loadCatalog().behaviors.find((b) => b.name === 'ssh_brute_force');
    assert.ok(bruteForce?.acrossSessions);
    assert.deepEqual(windowThresholds(bruteForce), [{ primitive: 'ssh_auth_failed', min: 5 }]);
    const cms = loadCatalog().behaviors.find((b) => b.name === 'cms_login_brute_force');
    assert.ok(cms?.acrossSessions);
    assert.deepEqual(
      windowThresholds(cms).map((t) => t.primitive),
      ['http_path_wp_login', 'http_path_xmlrpc'],
    );
    const withFlag = (condition: unknown, acrossSessions: unknown = true) => ({
      ...tiny,
      behaviors: [{ ...tiny.behaviors[0], condition, acrossSessions }, ...tiny.behaviors.slice(1)],
    });
    const name = tiny.primitives[0]?.name ?? '';
    assert.doesNotThrow(() => parseCatalog(withFlag({ primitive: name, min: 3 })));
    assert.throws(() => parseCatalog(withFlag(name)), /acrossSessions needs a threshold/);
    assert.throws(() => parseCatalog(withFlag({ all: [{ primitive: name, min: 3 }] })), /acrossSessions/);
    assert.throws(() => parseCatalog(withFlag({ primitive: name, min: 3 }, 'yes')), /true or false/);
  });

  it('lists every problem at once', () => {
    const broken = {
      version: '',
      primitives: [
        { ...tiny.primitives[0], operator: 'fuzzy' },
        { ...tiny.primitives[1], name: 'bad', pattern: '(a+)+$', operator: 'regex' },
      ],
      behaviors: [
        { ...tiny.behaviors[0], condition: { all: ['nope', { primitive: 'conn', min: 0 }] } },
        { ...tiny.behaviors[1], severity: 'extreme', mitre: ['X1'], killChainPhase: 'party' },
      ],
    };
    assert.throws(
      () => parseCatalog(broken),
      (error: Error) => {
        for (const fragment of [
          'version',
          'operator must be',
          'nested quantifier',
          'unknown primitive "nope"',
          '"min" must be',
          'severity',
          'mitre',
          'killChainPhase',
        ]) {
          assert.ok(error.message.includes(fragment), `missing "${fragment}" in ${error.message}`);
        }
        return true;
      },
    );
  });

  it('refuses regexes that could backtrack catastrophically', () => {
    assert.match(unsafeRegexReason('(a+)+b') ?? '', /nested/);
    assert.match(unsafeRegexReason('(\\w*x)*') ?? '', /nested/);
    assert.match(unsafeRegexReason('(a)\\1') ?? '', /backreference/);
    assert.equal(unsafeRegexReason('^wget\\s'), null);
  });
});

describe('classification', () => {
  const compiled = compileCatalog(parseCatalog(tiny));

  it('matches globs per simple command and case-insensitively', () => {
    assert.deepEqual(matchEventPrimitives(command('cd /tmp; wget http://x/a'), compiled), ['cmd_wget']);
    assert.deepEqual(matchEventPrimitives(command('cd /tmp && WGET http://x/a'), compiled), ['cmd_wget']);
    assert.deepEqual(matchEventPrimitives(command('echo wget'), compiled), []);
    assert.deepEqual(matchEventPrimitives(command('wget http://x', 'telnet'), compiled), []);
  });

  it('counts primitives per event and fires a behaviour once', () => {
    const result = classifySession(
      [command('wget a'), command('wget b'), { ...base, type: 'connect' }],
      compiled,
    );
    assert.equal(result.primitives.get('cmd_wget'), 2);
    assert.equal(result.behaviors.get('fetch'), 1);
    assert.ok(!result.behaviors.has('quiet'));
  });

  it('evaluates "not" over the whole group and fires nothing on an empty group', () => {
    assert.ok(classifyEvents([{ ...base, type: 'connect' }], compiled).behaviors.has('quiet'));
    const empty = classifyEvents([], compileCatalog(loadCatalog()));
    assert.equal(empty.behaviors.size, 0);
    assert.equal(empty.primitives.size, 0);
  });
});
