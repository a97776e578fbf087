"""GPU kernels of fastdefocus (shipped as the subpackage ``fastdefocus.kernels``)."""
