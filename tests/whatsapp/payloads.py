"""Webhook bodies shaped like the examples in Meta's WhatsApp Cloud API webhook reference."""
from __future__ import annotations

import copy

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY = "15550783881"
SHOPPER = "4915123456789"  # a German mobile number, as Meta sends it (no "+")


def envelope(value_extra: dict, *, contacts: bool = True) -> dict:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID}}
    if contacts:
        value["contacts"] = [{"profile": {"name": "Sheena Nelson"}, "wa_id": SHOPPER}]
    value.update(copy.deepcopy(value_extra))
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]}


def message(kind: str, body: dict, **extra) -> dict:
    msg = {"from": SHOPPER, "id": f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA{kind}",
           "timestamp": "1749416383", "type": kind, kind: body}
    msg.update(extra)
    return envelope({"messages": [msg]})


TEXT = message("text", {"body": "Where is my order CD-104233?"})

BUTTON_REPLY = message("interactive", {"type": "button_reply",
                                       "button_reply": {"id": "/affirm", "title": "Yes, cancel it"}},
                       context={"from": DISPLAY, "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNkVGNDBBMjQ2QjM5RkU4NTMA"})

LIST_REPLY = message("interactive", {"type": "list_reply",
                                     "list_reply": {"id": "/track_order", "title": "Track my order",
                                                    "description": "Where is my parcel?"}},
                     context={"from": DISPLAY, "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"})

LOCATION = message("location", {"address": "1 Hacker Way, Menlo Park, CA 94025", "latitude": 37.483307,
                                "longitude": -122.148981, "name": "Philz Coffee",
                                "url": "https://www.philzcoffee.com"})

IMAGE = message("image", {"caption": "this arrived broken", "mime_type": "image/jpeg",
                          "sha256": "UTmS0hqlW2CyWUWsR2QMNVz2mIPlnIkTyMWrUMbWCG8=", "id": "1003383421387256"})

STICKER = message("sticker", {"mime_type": "image/webp", "animated": False,
                              "sha256": "bo6jHW4dNQAn9ilp7yN2l8PjZ9wGLoUvBSDT3hs4WDw=", "id": "1185210989447318"})

REACTION = message("reaction", {"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
                                "emoji": "\U0001F44D"})

STATUS_DELIVERED = envelope({"statuses": [{
    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", "status": "delivered",
    "timestamp": "1750263773", "recipient_id": SHOPPER,
    "conversation": {"id": "6ceb9d929c1a4b9e1a1c3cbd4b6e2d4e", "origin": {"type": "service"}},
    "pricing": {"billable": True, "pricing_model": "PMP", "category": "service", "type": "regular"}}]},
    contacts=False)

STATUS_FAILED = envelope({"statuses": [{
    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJGQUlMRUQwMDAwMDAwMDAwMDAA", "status": "failed",
    "timestamp": "1750263800", "recipient_id": SHOPPER,
    "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed since "
                                          "the customer last replied to this number."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]}]},
    contacts=False)
