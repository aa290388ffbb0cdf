// Portal's only script: behaviour attached by data attributes, so that pages need no inline
// script or on* handler (the Content-Security-Policy allows scripts from this site only).
document.addEventListener("click", function (event) {
  var target = event.target.closest ? event.target.closest("[data-print]") : null;
  if (target) {
    event.preventDefault();
    window.print();
  }
});
