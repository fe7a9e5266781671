// Redaction of secrets and personal data in text shown to others (SPEC §2.1, §3.1).

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

/** Replaces e-mail addresses in a comment with a placeholder. */
export function redactEmails(text: string): string {
  return text.replace(EMAIL, '[email redacted]');
}

/** Masks the value of a `key` query parameter in a URL or path (for access logs). */
export function redactKeyParameter(url: string): string {
  return url.replace(/([?&]key=)[^&#]*/gi, '$1[redacted]');
}
