const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; padding: 3rem 1rem; color: #222; background: #f6f6f6; }
main { max-width: 28rem; margin: 0 auto; padding: 2rem; background: #fff; border-radius: 8px; }
h1 { font-size: 1.4rem; margin-top: 0; }
button { font-size: 1rem; padding: 0.6rem 1.2rem; border: 0; border-radius: 4px; background: #1a5fb4; color: #fff; cursor: pointer; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/**
 * GET /u.z: asks before unsubscribing, because mail gateways and link previews follow every link
 * with GET; the button POSTs the same token back (no script needed).
 */
export function confirmationPage(recipient: string, token: string): string {
  return page(
    'Unsubscribe',
    `<h1>Unsubscribe</h1>
<p>Stop sending these emails to <strong>${escapeHtml(recipient)}</strong>?</p>
<form method="post" action="?${escapeHtml(token)}">
<button type="submit">Unsubscribe</button>
</form>`,
  );
}

/** POST /u.z: the answer once the Unsubscribed event is in the log. */
export function unsubscribedPage(recipient: string): string {
  return page(
    'You are unsubscribed',
    `<h1>You are unsubscribed</h1>
<p><strong>${escapeHtml(recipient)}</strong> will no longer receive these emails.</p>`,
  );
}
