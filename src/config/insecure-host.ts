/** A check the connectors' schemas share: credentials must not travel in clear text off this machine unasked. */

/** True for an `http://` URL whose host is not loopback. */
export function isInsecureRemote(host: string): boolean {
  // zod runs refinements even when the URL failed its own check: that issue is reported already.
  if (!URL.canParse(host)) return false;
  const url = new URL(host);
  if (url.protocol !== "http:") return false;
  const name = url.hostname.replace(/^\[|\]$/g, "");
  return !(name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name));
}
