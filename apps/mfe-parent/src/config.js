// The page configuration rendered by the orchestrator into
// <script id="mfe-config" type="application/json">{"env": ..., "build_id": ..., "auth": {...} | null}</script>

/** Returns the parsed page config; a missing or unreadable element means no sign-in ({auth: null}). */
export function readConfig(doc = document) {
  const element = doc.getElementById('mfe-config');
  if (!element) return { auth: null };
  try {
    const config = JSON.parse(element.textContent || '{}');
    if (!config || typeof config !== 'object') return { auth: null };
    return { ...config, auth: normalizeAuth(config.auth) };
  } catch (err) {
    console.error('mfe-parent: cannot parse #mfe-config, continuing without sign-in', err);
    return { auth: null };
  }
}

function normalizeAuth(auth) {
  if (!auth || typeof auth !== 'object' || !auth.client_id) return null;
  const region = auth.region || 'us-east-1';
  // Without an explicit endpoint (real AWS), talk to the regional Cognito endpoint.
  const endpoint = auth.endpoint || `https://cognito-idp.${region}.amazonaws.com/`;
  return { ...auth, region, endpoint };
}
