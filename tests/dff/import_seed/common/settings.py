# DataFlux Func script `common__settings`, kept as `settings.py` in the set's folder
CURRENCY = "EUR"


@DFF.API("Currency", is_hidden=True)
def currency():
    import __utils

    return __utils.money(100) + " " + CURRENCY
