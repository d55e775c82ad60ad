/**
 * The PostgreSQL store's schema (postgresStore.ts). Created on open when missing, under an
 * advisory lock, so several server processes starting at once do not race on CREATE TABLE.
 *
 * Batches are rows of their own (space_id, seq), their ops kept as the wire JSON that catch-up
 * splices into `ops` frames; the op index is one row per op id, whose primary key makes a second
 * copy of an op impossible even if two writers got past their checks at once.
 */
export const PG_SCHEMA_VERSION = 1;

/** pg_advisory_xact_lock key of schema creation ("spaces" in ASCII). */
export const SCHEMA_LOCK_KEY = 0x737061636573;

/** The channel batch notifications go out on (fanout/pgBus.ts listens). */
export const BATCH_CHANNEL = 'spaces_batches';

export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS spaces_meta (key text PRIMARY KEY, value text NOT NULL);
-- One row per space; last_seq is the seq of its newest batch. Writers of a space lock this row
-- (SELECT … FOR UPDATE) for the length of their transaction: that is what keeps seqs gap-free.
CREATE TABLE IF NOT EXISTS spaces (
  id text PRIMARY KEY,
  name text NOT NULL,
  created bigint NOT NULL,
  last_seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
  space_id text NOT NULL REFERENCES spaces (id),
  seq bigint NOT NULL,
  tree_id text NOT NULL,
  n_ops integer NOT NULL,
  ops text NOT NULL,
  PRIMARY KEY (space_id, seq)
);
CREATE TABLE IF NOT EXISTS op_index (
  space_id text NOT NULL,
  tree_id text NOT NULL,
  peer text NOT NULL,
  counter bigint NOT NULL,
  seq bigint NOT NULL,
  PRIMARY KEY (space_id, tree_id, peer, counter)
);
CREATE TABLE IF NOT EXISTS peers (
  space_id text NOT NULL REFERENCES spaces (id),
  peer text NOT NULL,
  owner text NOT NULL,
  PRIMARY KEY (space_id, peer)
);
CREATE TABLE IF NOT EXISTS secrets (
  space_id text NOT NULL REFERENCES spaces (id),
  key text NOT NULL,
  time bigint NOT NULL,
  peer text NOT NULL,
  iv bytea,
  data bytea,
  PRIMARY KEY (space_id, key)
);
CREATE TABLE IF NOT EXISTS tokens (
  id text PRIMARY KEY,
  hash bytea NOT NULL UNIQUE,
  owner text NOT NULL,
  space text NOT NULL,
  role text NOT NULL,
  created bigint NOT NULL,
  expires bigint,
  revoked bigint
);
`;
