// CloudFront Function (cloudfront-js-2.0, viewer request) on the parent app's distribution:
// the SPA fallback at the edge. Only navigation requests -- no file extension in the last
// path segment and an Accept header that includes text/html -- are rewritten to the page:
//   /, /accounts/settings, /deep/link          -> /index.html
//   /previews/NAME/, /previews/NAME/a/b        -> /previews/NAME/index.html
// (CloudFront's default root object applies to / only, not below it.) Everything else is
// passed through unchanged, so a missing script, image or JSON file stays a 404.
// The /_shared/* behavior (the shared modules' bucket) runs it too: there it only strips
// /_shared, since that bucket holds its files at its root.
// `doit infra` passes this file to infra/hosting.yaml (parameter SpaFunctionCode): it is
// the one source; tests/js/spa-fallback.test.mjs runs it under Node.

function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri.indexOf('/_shared/') === 0) {
    // Never the page (a missing module stays 404), never the bucket's root (its listing).
    if (uri !== '/_shared/') request.uri = uri.slice('/_shared'.length);
    return request;
  }
  var last = uri.slice(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') !== -1) {
    return request; // a file name: served as is, or 404
  }
  var accept = request.headers.accept ? request.headers.accept.value : '';
  if (accept.indexOf('text/html') === -1) {
    return request; // fetch()/XHR and assets: no page instead of a 404
  }
  var preview = uri.match(/^\/previews\/([^/]+)(\/|$)/);
  request.uri = preview ? '/previews/' + preview[1] + '/index.html' : '/index.html';
  return request;
}
