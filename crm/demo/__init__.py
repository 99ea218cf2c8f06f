"""The demo shop: a deterministic, realistic shop (customers, orders, parcels, returns and refunds) and
its demo staff logins. Only the demo (``bin/crossdesk seed``), tests and benchmarks use it.

Everything is generated relative to an ``anchor`` date (UTC) so the demo always looks live: the
newest events happen on the anchor day, parcels are "out for delivery today", returns windows are
open or just closed. The seeded clock is ``seed_clock(anchor)`` (anchor at 15:00 UTC): no row is
dated later than that, so pin ``CROSSDESK_NOW`` to it when you want the data to line up exactly.

Same anchor + same ``rng_seed`` -> byte-identical data (``random.Random`` only, no global random,
no uuid4, no wall clock). The showcase orders (``SHOWCASE_ORDERS``) are hand-made, always numbered
CD-100001..CD-100011 and generated from a fixed private seed, so the README and tests can name them.

Conventions used by the generated data:
* Catalogue prices are net; ``tax`` is VAT/GST/sales tax on (subtotal + shipping), so
  ``total == subtotal + shipping_cost + tax``, every amount quantized to the currency's minor unit
  (JPY: whole yen).
* Emails use the reserved example.com/.org/.net domains; US phones use the fictional 555-01XX
  block and Australian ones ACMA's fictional 0491 57x range. Other countries have no fictional
  mobile range that libphonenumber accepts, so those are random but valid mobile numbers.
* Tracking, label and duty-payment URLs point at example.com hosts.

Modules: ``catalog`` (products, prices), ``markets`` (countries, cities, carriers, return policies),
``customers`` (names, addresses, phones), ``orders`` (the generator: parcels and tracking timelines,
``seed_demo_shop``, the showcase orders), ``staff`` (demo logins), ``common`` (the seeded clock, helpers).
"""
from crm.demo.catalog import CATALOGUE, PRODUCTS
from crm.demo.common import SeedError, live_anchor, seed_clock
from crm.demo.customers import is_valid_e164
from crm.demo.markets import EU, MARKETS, POLICIES
from crm.demo.orders import SHOWCASE_NUMBERS, SHOWCASE_ORDERS, SeedSummary, demo_orders_for_readme, seed_demo_shop
from crm.demo.staff import DEMO_STAFF, seed_demo_staff

__all__ = [
    "CATALOGUE", "DEMO_STAFF", "EU", "MARKETS", "POLICIES", "PRODUCTS", "SHOWCASE_NUMBERS", "SHOWCASE_ORDERS",
    "SeedError", "SeedSummary", "demo_orders_for_readme", "is_valid_e164", "live_anchor", "seed_clock",
    "seed_demo_shop", "seed_demo_staff",
]
