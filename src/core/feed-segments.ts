// Splits the address space covered by feed CIDR listings into segments with one set of listing feeds each (SPEC §3.2, decision 0703).

/** One CIDR listing: inclusive 128-bit key range (IPv4 mapped into ::ffff:0:0/96). */
export interface FeedRange {
  readonly feed: string;
  readonly trust: number;
  readonly first: bigint;
  readonly last: bigint;
  readonly listedAt: number;
}

/** One listing feed of a segment; `listedAt` is the earliest of that feed's listings covering it. */
export interface SegmentFeed {
  readonly name: string;
  readonly trust: number;
  readonly listedAt: number;
}

/** A maximal run of addresses covered by exactly the same listings and split at no `cuts` point. */
export interface FeedSegment {
  readonly first: bigint;
  readonly last: bigint;
  /** One per feed, by name (a feed listing both a /16 and a /24 inside it counts once, as a check does). */
  readonly feeds: readonly SegmentFeed[];
}

/**
 * The segments of the union of `ranges` in ascending order: inside one segment every address is covered
 * by the same listings, so it gets the same feed evidence as `feedListingsFor` gives a check. `cuts` are
 * extra points where a new segment must begin (e.g. the starts and ends + 1 of whitelist ranges, so a
 * whitelist factor is the same across a segment). Cost: O((n + c) log(n + c)) plus the active listings
 * at each boundary.
 */
export function feedSegments(ranges: readonly FeedRange[], cuts: Iterable<bigint> = []): FeedSegment[] {
  if (ranges.length === 0) return [];
  let low = ranges[0]?.first ?? 0n;
  let high = ranges[0]?.last ?? 0n;
  for (const range of ranges) {
    if (range.first < low) low = range.first;
    if (range.last > high) high = range.last;
  }
  const pointSet = new Set<bigint>();
  for (const range of ranges) {
    pointSet.add(range.first);
    pointSet.add(range.last + 1n);
  }
  for (const cut of cuts) if (cut > low && cut <= high) pointSet.add(cut);
  const points = [...pointSet].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const byStart = [...ranges.keys()].sort((a, b) => compare(ranges[a]?.first, ranges[b]?.first));
  const byEnd = [...ranges.keys()].sort((a, b) => compare(ranges[a]?.last, ranges[b]?.last));
  const active = new Set<number>();
  const out: FeedSegment[] = [];
  let s = 0;
  let e = 0;
  for (let p = 0; p + 1 < points.length; p++) {
    const point = points[p] ?? 0n;
    while (e < byEnd.length && (ranges[byEnd[e] ?? 0]?.last ?? 0n) < point) active.delete(byEnd[e++] ?? 0);
    while (s < byStart.length && (ranges[byStart[s] ?? 0]?.first ?? 0n) <= point)
      active.add(byStart[s++] ?? 0);
    if (active.size === 0) continue;
    const feeds = new Map<string, SegmentFeed>();
    for (const index of active) {
      const range = ranges[index];
      if (!range) continue;
      const seen = feeds.get(range.feed);
      if (!seen || range.listedAt < seen.listedAt) {
        feeds.set(range.feed, { name: range.feed, trust: range.trust, listedAt: range.listedAt });
      }
    }
    out.push({
      first: point,
      last: (points[p + 1] ?? 0n) - 1n,
      feeds: [...feeds.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    });
  }
  return out;
}

function compare(a: bigint | undefined, b: bigint | undefined): number {
  const x = a ?? 0n;
  const y = b ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}
