# The ecgnas worker (and coordinator) image for a cluster: see docs/cluster.md.
#   docker build -t ecgnas-worker .
FROM rust:1-bookworm AS build
ARG FEATURES=""
WORKDIR /src
COPY . .
RUN cargo build --release -p ecgnas --bin ecgnas ${FEATURES:+--features $FEATURES}

FROM debian:bookworm-slim
RUN useradd --create-home ecgnas
COPY --from=build /src/target/release/ecgnas /usr/local/bin/ecgnas
USER ecgnas
WORKDIR /home/ecgnas
ENTRYPOINT ["ecgnas"]
CMD ["worker", "--help"]
