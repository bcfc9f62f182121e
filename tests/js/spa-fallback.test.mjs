// The SPA fallback CloudFront Function (infra/spa-fallback.js) against CloudFront
// viewer-request events. The file is evaluated as CloudFront does: a script defining
// `handler`, no module system. Run by tests/test_spa_function.py (`node --test`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const source = readFileSync(new URL('../../infra/spa-fallback.js', import.meta.url), 'utf8');
const context = vm.createContext({});
vm.runInContext(source, context);
const handler = context.handler;

const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

// The event shape CloudFront passes to a viewer-request function (version 1.0).
function event(uri, accept) {
  const headers = { host: { value: 'd111111abcdef8.cloudfront.net' } };
  if (accept !== null) headers.accept = { value: accept };
  return {
    version: '1.0',
    context: { distributionDomainName: 'd111111abcdef8.cloudfront.net', distributionId: 'EDFDVBD6EXAMPLE',
               eventType: 'viewer-request', requestId: 'req-1' },
    viewer: { ip: '198.51.100.11' },
    request: { method: 'GET', uri, querystring: { q: { value: '1' } }, headers, cookies: {} },
  };
}

const uriAfter = (uri, accept = BROWSER_ACCEPT) => handler(event(uri, accept)).uri;

test('navigation requests get the page', () => {
  for (const uri of ['/', '/accounts/settings', '/deep/link', '/accounts/', '/payments']) {
    assert.equal(uriAfter(uri), '/index.html', uri);
  }
});

test('files pass through unchanged, so a missing one stays 404', () => {
  for (const uri of ['/main-ABC.js', '/missing.png', '/x.json', '/chunks/a-1B2C.js', '/index.html',
                     '/assets/logo.svg', '/previews/pr-7/main-ABC.js', '/deep/link/data.v2']) {
    assert.equal(uriAfter(uri), uri, uri);
  }
});

test('requests that do not accept HTML are not navigations', () => {
  assert.equal(uriAfter('/api/accounts', '*/*'), '/api/accounts');
  assert.equal(uriAfter('/accounts/settings', 'application/json'), '/accounts/settings');
  assert.equal(uriAfter('/accounts/settings', null), '/accounts/settings'); // no Accept header
});

test('navigation under a preview gets that preview\'s page', () => {
  assert.equal(uriAfter('/previews/pr-7/'), '/previews/pr-7/index.html');
  assert.equal(uriAfter('/previews/pr-7'), '/previews/pr-7/index.html');
  assert.equal(uriAfter('/previews/pr-7/accounts/settings'), '/previews/pr-7/index.html');
  assert.equal(uriAfter('/previews/'), '/index.html'); // no preview name: the live page
  assert.equal(uriAfter('/previewsx/a'), '/index.html');
});

test('the shared modules lose their /_shared prefix and never get a page', () => {
  assert.equal(uriAfter('/_shared/lit-5JTFAIH4.js'), '/lit-5JTFAIH4.js');
  assert.equal(uriAfter('/_shared/chunks/a-1B2C.js', '*/*'), '/chunks/a-1B2C.js');
  assert.equal(uriAfter('/_shared/accounts/settings'), '/accounts/settings'); // a 404 there
  assert.equal(uriAfter('/_shared/'), '/_shared/'); // not the bucket's root: that is its listing
  assert.equal(uriAfter('/_sharedx/a'), '/index.html'); // another path: a navigation
});

test('the rest of the request is kept', () => {
  const out = handler(event('/deep/link', BROWSER_ACCEPT));
  assert.equal(out.method, 'GET');
  assert.deepEqual(out.querystring, { q: { value: '1' } });
  assert.equal(out.headers.host.value, 'd111111abcdef8.cloudfront.net');
});
