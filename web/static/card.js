// Kapok checkout, paying by card: the card goes from this page to Stripe (Stripe.js, loaded
// before this script), never to Kapok. Stripe saves it to the order's customer (a
// SetupIntent), Kapok then charges the order's payment with it, and the order page (order.js)
// reloads once Stripe's webhook has settled the order. A card that needs 3-D Secure is
// authenticated with Stripe in between.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) { return; }
  var message = document.getElementById("card-message");
  var button = document.getElementById("card-pay");

  function say(text, failed) {
    message.textContent = text;
    message.className = "card-message" + (failed ? " failed" : "");
  }

  if (typeof window.Stripe !== "function" || !window.fetch) {
    button.disabled = true;
    say("Stripe's card form could not be loaded: check your connection and reload the page.", true);
    return;
  }
  var stripe = window.Stripe(form.getAttribute("data-publishable-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");

  function refused(result, otherwise) {
    var error = new Error((result.error && result.error.message) || otherwise);
    error.answer = result;
    return error;
  }

  function charge(paymentMethod) {
    return fetch(form.getAttribute("data-confirm-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": form.getAttribute("data-csrf-token") },
      body: JSON.stringify({ payment_method: paymentMethod })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          if (answer.setup_client_secret) {  // declined: the next card needs a new setup
            form.setAttribute("data-setup-secret", answer.setup_client_secret);
          }
          throw new Error(answer.message || "the payment was refused (" + response.status + ")");
        }
        return answer;
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    say("Checking the card with Stripe…");
    stripe.confirmCardSetup(form.getAttribute("data-setup-secret"), { payment_method: { card: card } })
      .then(function (result) {
        if (result.error || !result.setupIntent) { throw refused(result, "the card was refused"); }
        say("Paying…");
        return charge(result.setupIntent.payment_method);
      })
      .then(function (answer) {
        if (answer.status !== "requires_action") { return answer; }
        say("Your bank asks you to confirm the payment…");
        return stripe.confirmCardPayment(answer.client_secret).then(function (result) {
          if (result.error) { throw refused(result, "the card could not be authenticated"); }
          return result;
        });
      })
      .then(function () {
        say("Paid. Waiting for Stripe's confirmation; this page updates by itself.");
      })
      .catch(function (error) {
        say("Not paid: " + error.message + ". You can try again or use another card.", true);
        button.disabled = false;
      });
  });
})();
