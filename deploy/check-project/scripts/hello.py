import fnhub


@fnhub.api("Say hello")
def greet(name: str = "world") -> str:
    return f"hello {name}"


@fnhub.api("A cron tick")
def tick() -> None:
    fnhub.cache.incr("ticks")
