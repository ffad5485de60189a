"""pytest-html integration, registered only when pytest-html is installed."""

from __future__ import annotations

from typing import Any

import pytest


class HtmlHooks:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        from .junit import RAW_KEY

        if report.when == "call" and report.failed:
            import pytest_html

            extras = getattr(report, "extras", [])
            for raw in item.stash.get(RAW_KEY, []):
                extras.append(pytest_html.extras.text(raw, name="probe output"))
            report.extras = extras
        return report
