"""Orders (DataFlux Func script `shop__orders`)."""

import common__utils
from common__settings import CURRENCY
from __pricing import price_of


@DFF.API("Order total", category="shop", timeout=10, cache_result=30)
def total(item, quantity=1):
    cents = price_of(item) * int(quantity)
    return {"item": item, "total": common__utils.money(cents), "currency": CURRENCY}


@DFF.API("Queue an order", timeout=60, expires=300)
def place(item, quantity=1):
    DFF.STORE.set("last-order", {"item": item, "quantity": quantity}, expires=3600)
    print("order placed", item, quantity)
    return {"placed": item, "login": DFF.ENV("ERP_USER")}


@DFF.API(
    "Count orders",
    fixed_cron_expr=None,
    integration="autoRun",
    integration_config={"cronExpr": "0 3 * * *", "onSystemLaunch": True},
)
def nightly_count():
    return DFF.CACHE.incr("nightly")


@DFF.API("Tick")
def tick():
    """A cron job counts its runs in DFF.CACHE and keeps the last run in DFF.STORE."""
    n = DFF.CACHE.incr("ticks")
    DFF.STORE.set("last-tick", {"n": n, "expr": _DFF_CRON_EXPR})
    return n


@DFF.API("Ticks so far")
def ticks():
    return {"ticks": int(DFF.CACHE.get("ticks") or 0), "last": DFF.STORE.get("last-tick")}


@DFF.API("ERP login check")
def erp_check():
    password = DFF.ENV("ERP_PASSWORD")
    print("logging in with", password)
    return {"user": DFF.ENV("ERP_USER"), "batch": DFF.ENV("BATCH"), "secret": password}


@DFF.API("Receipt page")
def receipt(order_id):
    return DFF.RESP(f"<h1>Order {order_id}</h1>", content_type="html", headers={"X-Shop": "1"})
