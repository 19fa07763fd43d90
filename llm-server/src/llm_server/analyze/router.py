"""`POST /analyze`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from llm_server.analyze.protocol import AnalyzeRequest, AnalyzeResponse
from llm_server.analyze.service import AnalyzeService
from llm_server.dependencies import ClientId, ReadyGeneration
from llm_server.openapi import ERROR_RESPONSES

router = APIRouter(tags=["analyze"])


async def analyze_service(request: Request) -> AnalyzeService:
    service: AnalyzeService = request.app.state.analyze
    return service


Analyze = Annotated[AnalyzeService, Depends(analyze_service)]


@router.post("/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES)
async def analyze(
    body: AnalyzeRequest, _: ReadyGeneration, service: Analyze, client: ClientId
) -> AnalyzeResponse:
    """Token count, every token's log-probability with its top alternatives, perplexity, and
    (given `labels`) zero-shot classification by the model's likelihood of each label."""
    return await service.analyze(body, client)
