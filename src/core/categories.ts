// The 16 report categories (SPEC §1) and the AbuseIPDB 1–23 id mapping onto them (SPEC §9).

export const CATEGORIES = [
  'brute_force',
  'port_scan',
  'ddos',
  'web_exploit',
  'sql_injection',
  'phishing',
  'spam',
  'bad_bot',
  'exploited_host',
  'malware',
  'dns_abuse',
  'open_proxy',
  'iot_targeted',
  'spoofing',
  'fraud',
  'other',
] as const;

export type Category = (typeof CATEGORIES)[number];

/** Category id 1–16 for a category name. */
export function categoryId(category: Category): number {
  return CATEGORIES.indexOf(category) + 1;
}

/** Resolves a category given by name (case-insensitive) or by id 1–16; null when it is neither. */
export function parseCategory(input: string | number): Category | null {
  const text = String(input).trim().toLowerCase();
  if (/^[0-9]{1,2}$/.test(text)) {
    return CATEGORIES[Number(text) - 1] ?? null;
  }
  return (CATEGORIES as readonly string[]).includes(text) ? (text as Category) : null;
}

// AbuseIPDB category ids (https://www.abuseipdb.com/categories) mapped onto ours, SPEC §9.
const ABUSEIPDB_MAP: Readonly<Record<number, Category>> = {
  1: 'dns_abuse',
  2: 'dns_abuse',
  3: 'fraud',
  4: 'ddos',
  5: 'brute_force', // FTP Brute-Force
  6: 'ddos', // Ping of Death
  7: 'phishing',
  8: 'fraud',
  9: 'open_proxy',
  10: 'spam',
  11: 'spam',
  12: 'spam',
  13: 'other',
  14: 'port_scan',
  15: 'other',
  16: 'sql_injection',
  17: 'spoofing',
  18: 'brute_force',
  19: 'bad_bot',
  20: 'exploited_host',
  21: 'web_exploit',
  22: 'brute_force',
  23: 'iot_targeted',
};

/** Maps an AbuseIPDB category id (1–23) to ours; null outside that range. */
export function fromAbuseIpdbCategory(id: number): Category | null {
  return ABUSEIPDB_MAP[id] ?? null;
}
