"""Documents over HTTP: a change to a budget, the decisions' documents as issued, and the monthly
statement as a PDF (``application/pdf``), for the organizer, the client and their representative."""

from __future__ import annotations

from aiohttp import web

from wallet.api.http import json_response, read_json, requires
from wallet.api.keys import PRINCIPAL, SERVICE
from wallet.auth.tokens import Role
from wallet.ledger.errors import ValidationError
from wallet.shapes import requests
from wallet.shapes.requests import decode
from wallet.storage.port import Record

PDF = "application/pdf"


def pdf_response(decision: Record, document: bytes) -> web.Response:
    """The stored bytes as they were issued, with their SHA-256 to compare."""
    return web.Response(
        body=document,
        content_type=PDF,
        headers={
            "Content-Disposition": f'inline; filename="{decision["number"]}.pdf"',
            "Cache-Control": "private, no-store",
            "X-Document-SHA256": decision["document_sha256"],
        },
    )


@requires(Role.ADMIN)
async def change_budget(request: web.Request) -> web.Response:
    """``POST /v1/clients/{client_id}/budgets/{budget_id}/decisions``: new lines from a month on."""
    command = decode(requests.BudgetChange, await read_json(request))
    budget = await request.app[SERVICE].change_budget(
        request.match_info["client_id"], request.match_info["budget_id"], command, request[PRINCIPAL]
    )
    return json_response(budget, status=201)


@requires(Role.ADMIN)
async def budget_decision(request: web.Request) -> web.Response:
    """``GET /v1/clients/{client_id}/budgets/{budget_id}/decision``: the budget's latest decision."""
    decision, document = await request.app[SERVICE].budget_decision(
        request.match_info["client_id"], request.match_info["budget_id"]
    )
    return pdf_response(decision, document)


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_decisions(request: web.Request) -> web.Response:
    """``GET /v1/me/decisions``: every decision on the client's budgets, newest first."""
    decisions = await request.app[SERVICE].my_decisions(request[PRINCIPAL])
    return json_response({"data": decisions, "next_cursor": None})


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_decision(request: web.Request) -> web.Response:
    """``GET /v1/me/decisions/{decision_id}``: one decision's document as issued."""
    decision, document = await request.app[SERVICE].my_decision(request[PRINCIPAL], request.match_info["decision_id"])
    return pdf_response(decision, document)


def statement_language(request: web.Request) -> str:
    """``?language=``: a statement document's, ``fi`` (default) or ``sv``; refused if anything else,
    whether a document or JSON is asked for."""
    language = request.query.get("language", "fi")
    if language not in {member.value for member in requests.DecisionLanguage}:
        raise ValidationError("language", "must be fi or sv")
    return language


async def statement_pdf(request: web.Request, month: str) -> web.Response:
    """``GET /v1/me/statements/{month}`` with ``Accept: application/pdf``: in Finnish, or Swedish with
    ``?language=sv``; a closed month's as stored, with its SHA-256."""
    language = statement_language(request)
    document, sha256 = await request.app[SERVICE].statement_document(request[PRINCIPAL], month, language)
    headers = {"Content-Disposition": f'inline; filename="statement-{month}.pdf"', "Cache-Control": "private, no-store"}
    if sha256 is not None:  # a closed month's, as stored
        headers["X-Document-SHA256"] = sha256
    return web.Response(body=document, content_type=PDF, headers=headers)
