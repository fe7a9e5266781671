// The background WAL checkpointer (decision 0631): checkpoints happen off the writer's thread.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Store } from './store.js';
import { BACKSTOP_AUTOCHECKPOINT_PAGES } from './wal-checkpointer.js';

describe('WAL checkpointer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vakt-wal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies committed WAL frames into the database file without the writer doing it', async () => {
    const path = join(dir, 'a.db');
    const store = await Store.open(`sqlite:${path}`);
    try {
      const sqlite = store.sqlite;
      assert.ok(sqlite);
      await store.startWalCheckpointer();
      assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_AUTOCHECKPOINT_PAGES);
      sqlite.exec('create table blobs (b blob not null)');
      const before = statSync(path).size;
      // ~3 MiB: below the backstop (~40 MiB) and the default automatic checkpoint (4 MiB), so only a
      // background checkpoint moves it into the database file.
      const insert = sqlite.prepare('insert into blobs (b) values (?)');
      sqlite.transaction(() => {
        for (let i = 0; i < 48; i++) insert.run(Buffer.alloc(64 * 1024, i));
      })();
      let size = statSync(path).size;
      for (let i = 0; i < 100 && size < before + 3 * 1024 * 1024; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        size = statSync(path).size;
      }
      assert.ok(size >= before + 3 * 1024 * 1024, `database file grew to ${size} bytes`);
      await store.stopWalCheckpointer();
      assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), 1000);
    } finally {
      await store.close();
    }
  });

  it('keeps its backstop across a bulk transaction that commits without the automatic checkpoint', async () => {
    const store = await Store.open(`sqlite:${join(dir, 'c.db')}`);
    try {
      const sqlite = store.sqlite;
      assert.ok(sqlite);
      await store.startWalCheckpointer();
      await store.transactionWithoutCheckpoint(async () => {
        assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), 0);
      });
      assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_AUTOCHECKPOINT_PAGES);
      await store.stopWalCheckpointer();
      await store.transactionWithoutCheckpoint(async () => {});
      assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), 1000);
    } finally {
      await store.close();
    }
  });

  it('leaves checkpoint() to the background thread while it runs: the writer copies nothing itself', async () => {
    const store = await Store.open(`sqlite:${join(dir, 'd.db')}`);
    try {
      const db = store.db as { connection: typeof store.db.connection };
      const connection = db.connection.bind(store.db);
      let used = 0;
      db.connection = () => {
        used++;
        return connection();
      };
      await store.startWalCheckpointer();
      await store.checkpoint();
      assert.equal(used, 0, 'no checkpoint on the writer while the background one runs');
      await store.stopWalCheckpointer();
      await store.checkpoint();
      assert.equal(used, 1, 'without it, checkpoint() runs on the writer');
    } finally {
      await store.close();
    }
  });

  it('does nothing for an in-memory database, and close stops a running one', async () => {
    const memory = await Store.open('sqlite::memory:');
    await memory.startWalCheckpointer();
    await memory.close();
    const store = await Store.open(`sqlite:${join(dir, 'b.db')}`);
    await store.startWalCheckpointer();
    await store.close();
  });
});
