# The job-worker image: one static binary, nothing else. FROM scratch means
# no shell, no libc and nothing to patch, and it builds on a machine that
# cannot pull any image. The build context is the Dockerfile and the binary
# (`cargo xtask image` sends exactly those two files).
FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/job-test/job-test
ARG LICENSES="MIT OR Apache-2.0"
LABEL org.opencontainers.image.title="job-worker" \
      org.opencontainers.image.description="A flaky Kubernetes Job workload: fails on purpose, in every way real programs fail" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="${LICENSES}"
COPY job-worker /job-worker
# The numeric non-root user of distroless images: runAsNonRoot can verify a
# number, not a name, and there is no /etc/passwd here to resolve one.
USER 65532:65532
ENTRYPOINT ["/job-worker"]
