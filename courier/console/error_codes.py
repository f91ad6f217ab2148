"""Delivery error codes in plain words, for the delivery log (docs/CONSOLE.md).

The codes are the vendors' own (Twilio's numeric errors for texts and calls, SMTP reply and
enhanced status codes for email, the push services' reasons) plus Courier's few of its own. A
code not listed is shown with the vendor's message, or as unknown.
"""

from __future__ import annotations

PLAIN_WORDS: dict[str, str] = {
    # Courier's own
    "outcome-unknown": "The provider did not answer in time; Courier is checking whether it sent",
    "not-sent": "The provider refused for now; Courier tries again later",
    "expired": "The message was not delivered in time and was given up",
    "gone": "The address or device no longer exists",
    # Twilio (texts and calls)
    "20429": "Too many requests to the provider; sent again later",
    "21211": "The phone number is not valid",
    "21408": "Texting that country is not enabled for this account",
    "21610": "The recipient has opted out of texts (replied STOP)",
    "21612": "The provider cannot route a text to this number",
    "21614": "The number cannot receive texts (for example a landline)",
    "30003": "The phone is unreachable (switched off or out of coverage)",
    "30004": "The recipient's carrier blocked the message",
    "30005": "The number is unknown to its carrier (it may no longer exist)",
    "30006": "The number is a landline or cannot receive texts",
    "30007": "The carrier filtered the message as possible spam",
    "30008": "The carrier reported an unknown error",
    # SMTP
    "421": "The mail server is unavailable for now",
    "450": "The mailbox is unavailable for now",
    "451": "The mail server had a temporary problem",
    "452": "The mail server is out of space for now",
    "550": "The mailbox does not exist or refused the message",
    "552": "The mailbox is full",
    "553": "The address is not valid",
    "554": "The mail server refused the message",
    "5.1.1": "The mailbox does not exist",
    "5.2.2": "The mailbox is full",
    "5.7.1": "The mail server refused the message as unwanted",
    # Push
    "Unregistered": "The app was uninstalled from the device",
    "BadDeviceToken": "The device token is not valid",
    "UNREGISTERED": "The app was uninstalled from the device",
    "INVALID_ARGUMENT": "The push service refused the message as malformed",
    "410": "The browser subscription no longer exists",
    "PayloadTooLarge": "The notification was too large to push",
    # Calls
    "busy": "The line was busy",
    "no-answer": "Nobody answered the call",
}


def plain_words(code: str | None, vendor_message: str | None = None) -> str:
    """What an error code means, for a person."""
    if not code:
        return vendor_message or ""
    known = PLAIN_WORDS.get(code)
    if known is not None:
        return known
    if vendor_message:
        return f"The provider said: {vendor_message}"
    return "No description is known for this code"
