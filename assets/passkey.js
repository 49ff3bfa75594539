// Portcullis passkeys: the one script of the hosted pages (served as {issuer}/assets/passkey.js,
// allowed by path on the three ceremony pages only). A form with `data-webauthn` carries the
// server's WebAuthn options (JSON, binary fields base64url); its button runs the ceremony, puts
// the credential (JSON, binary fields base64url) in the form's `credential` field and submits
// the form as usual. No request of its own: the server answers the form like any other.
"use strict";
(function () {
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  for (const form of document.querySelectorAll("form[data-webauthn]")) {
    const go = form.querySelector("button[data-webauthn-go]");
    const shown = form.querySelector("[data-webauthn-error]");
    if (!go || !window.PublicKeyCredential) {
      if (shown) { shown.textContent = "This browser cannot use passkeys."; }
      continue;
    }
    go.hidden = false;
    go.addEventListener("click", async (event) => {
      event.preventDefault();
      go.disabled = true;
      const pk = JSON.parse(form.dataset.webauthn).publicKey;
      pk.challenge = dec(pk.challenge);
      try {
        let out;
        if (pk.user) {
          pk.user.id = dec(pk.user.id);
          (pk.excludeCredentials || []).forEach((c) => { c.id = dec(c.id); });
          const c = await navigator.credentials.create({ publicKey: pk });
          out = {
            id: c.id, rawId: enc(c.rawId), type: c.type, extensions: c.getClientExtensionResults(),
            response: {
              attestationObject: enc(c.response.attestationObject),
              clientDataJSON: enc(c.response.clientDataJSON),
              transports: c.response.getTransports ? c.response.getTransports() : undefined,
            },
          };
        } else {
          (pk.allowCredentials || []).forEach((c) => { c.id = dec(c.id); });
          const c = await navigator.credentials.get({ publicKey: pk });
          out = {
            id: c.id, rawId: enc(c.rawId), type: c.type, extensions: c.getClientExtensionResults(),
            response: {
              authenticatorData: enc(c.response.authenticatorData),
              clientDataJSON: enc(c.response.clientDataJSON),
              signature: enc(c.response.signature),
              userHandle: c.response.userHandle ? enc(c.response.userHandle) : null,
            },
          };
        }
        form.elements.credential.value = JSON.stringify(out);
        form.submit();
      } catch (e) {
        go.disabled = false;
        if (shown) { shown.textContent = "The passkey was not used (" + e.name + "). Try again, or go back."; }
      }
    });
  }
})();
