"""The embedded local AWS stack (moto) and the local API server. Development only: never packaged."""
