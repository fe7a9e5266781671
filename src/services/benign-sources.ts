// Known-benign sources (SPEC §1 whitelist): a lookup from an address to its source and discount factor.
import type { IpAddress } from '../core/ip.js';

export interface BenignMatch {
  readonly source: string;
  /** 0–1, multiplied into the final score. */
  readonly factor: number;
}

export interface BenignSources {
  match(ip: IpAddress): BenignMatch | null;
}

export const NO_BENIGN_SOURCES: BenignSources = { match: () => null };
