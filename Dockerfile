# One image for every crmpilot service: `docker run crmpilot python -m <service>`.
FROM python:3.11-slim
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
RUN uv sync --frozen --no-dev && mkdir -p /app/.run
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
CMD ["crmpilot", "--help"]
