// Records every script error and console.error into window.__difflabErrors (read by the test
// through the DOM): it runs before anything else on the page.
window.__difflabErrors = [];
(function () {
  function note(m) { window.__difflabErrors.push(String(m)); }
  window.addEventListener('error', function (e) { note(e.message || 'script error'); });
  window.addEventListener('unhandledrejection', function (e) {
    note('unhandled rejection: ' + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  var original = console.error;
  console.error = function () { note(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
})();
