"""Public PKI documents: CRLs of our CAs and the CSMS root.

No authentication, by design: a CRL distribution point in every certificate we issue points
here, and whoever checks a certificate (a station, another system) must be able to fetch it.
Both documents are public (signed lists of serials; a certificate), so nothing leaks.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.responses import Response

from chargewarden.api.auth import Context
from chargewarden.api.problems import Problem, problem_responses

router = APIRouter(prefix="/pki", tags=["pki"])

CRL_MEDIA_TYPE = "application/pkix-crl"
PEM_MEDIA_TYPE = "application/x-pem-file"
# CA names are ours (cpo-station-ca, ...): refusing anything else early keeps odd input out of
# the provider and the logs.
_CA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Short enough that a revocation is seen within a minute by anyone who honours the header.
CACHE_CONTROL = "public, max-age=60"


@router.get(
    "/crl/{ca_name}.crl",
    response_class=Response,
    responses={200: {"content": {CRL_MEDIA_TYPE: {}}, "description": "DER-encoded CRL"},
               **problem_responses(404)},
    summary="Certificate revocation list of one of our CAs (public)",
)
async def crl(ca_name: str, ctx: Context) -> Response:
    der = None
    if ctx.crl_provider is not None and _CA_NAME.match(ca_name):
        der = await ctx.crl_provider(ca_name)
    if der is None:
        raise Problem(404, "no CRL is published for this CA name", slug="unknown-ca",
                      title="Unknown CA")
    return Response(der, media_type=CRL_MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})


@router.get(
    "/csms-root.pem",
    response_class=Response,
    responses={200: {"content": {PEM_MEDIA_TYPE: {}}, "description": "PEM certificate(s)"},
               **problem_responses(404)},
    summary="The root certificate(s) stations must trust to accept this CSMS (public)",
)
async def csms_root(ctx: Context) -> Response:
    pem = await ctx.csms_root_provider() if ctx.csms_root_provider is not None else None
    if pem is None:
        raise Problem(404, "this CSMS has no certificate authority configured",
                      slug="no-ca", title="No CA")
    return Response(pem, media_type=PEM_MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})
