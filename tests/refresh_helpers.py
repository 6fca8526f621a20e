"""Services over a temp index and state database, fetching the local site like the bot would."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.config import Config, IndexSection, RefreshSection
from bot.services import Services
from bot.telegram.app import open_services
from index.coverage import CoverageIndex
from tests.sources_server import TEST_SETTINGS

QUESTION = "How much did the library renovation cost?"
QUOTE = "£3.2m"


def make_services(tmp_path: Path, index: CoverageIndex, **refresh: Any) -> Services:
    """Services as `open_services` builds them, with the test fetcher's short timeouts."""
    settings = RefreshSection(**{"allow_private_addresses": True, **refresh})
    config = Config(index=IndexSection(data_dir=str(tmp_path / "state")), refresh=settings)
    services = open_services(config, index=index)
    services.config.fetch = dataclasses.replace(
        TEST_SETTINGS, allow_private=settings.allow_private_addresses
    )
    return services


@pytest_asyncio.fixture(loop_scope="function", name="services")
async def services_fixture(tmp_path: Path, fresh_index: CoverageIndex) -> AsyncIterator[Services]:
    """Services over a fresh index (import this fixture to use it)."""
    services = make_services(tmp_path, fresh_index)
    yield services
    await services.batcher.stop()
    services.state.close()


def answers(index: CoverageIndex, question: str = QUESTION) -> bool:
    """The index still answers a question about the fixture site with the right quote."""
    answer = index.ask(question)
    return answer.answered and any(QUOTE in e.text for e in answer.excerpts)
