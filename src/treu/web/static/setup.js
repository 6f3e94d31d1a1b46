// Programme set-up forms: show a field only when it applies (points for "fixed", a factor
// for "multiplier"); without JavaScript every field shows and the server ignores the others.
// Enter in the basket asks for the preview rather than saving the rule; a delete asks first.
(function () {
  "use strict";
  // A delete or switch-off asks first (it is a new revision at once; the document page can
  // bring an old one back).
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  var form = document.querySelector("form.setup-form");
  if (!form) return;
  var dependent = form.querySelectorAll("[data-only-if]");
  var update = function () {
    dependent.forEach(function (field) {
      var other = form.elements.namedItem(field.getAttribute("data-only-if"));
      var allowed = field.getAttribute("data-only-values").split(" ");
      field.hidden = !other || allowed.indexOf(other.value) < 0;
    });
  };
  form.addEventListener("change", update);
  update();
  var basket = form.querySelector("fieldset.basket");
  var preview = basket && basket.querySelector("button[value=preview]");
  if (basket && preview) {
    basket.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") {
        event.preventDefault();
        preview.click();
      }
    });
  }
})();
