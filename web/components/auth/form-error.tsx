export function FormError({ message }: { message: string | null }) {
  return (
    <div role="alert" className={message ? "alert alert-error" : "visually-hidden"}>
      {message}
    </div>
  );
}
