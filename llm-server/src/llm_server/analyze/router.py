"""`POST /analyze`."""

from __future__ import annotations

from fastapi import APIRouter, Request

from llm_server.analyze.protocol import AnalyzeRequest, AnalyzeResponse
from llm_server.analyze.service import AnalyzeService
from llm_server.openai.router import client_of, get_service
from llm_server.openapi import ERROR_RESPONSES

router = APIRouter(tags=["analyze"])


@router.post("/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES)
async def analyze(body: AnalyzeRequest, request: Request) -> AnalyzeResponse:
    """Token count, every token's log-probability with its top alternatives, perplexity, and
    (given `labels`) zero-shot classification by the model's likelihood of each label."""
    service: AnalyzeService = request.app.state.analyze
    (await get_service(request)).check_model(body.model)
    return await service.analyze(body, client_of(request))
